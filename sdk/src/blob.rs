//! Object storage granted by the job (`grants: {blob: …}`).
//!
//! Paths are relative to the grant's root; a plugin cannot leave it.

#[cfg(target_arch = "wasm32")]
use crate::__wit::sluice::plugin::blob as wit;
use crate::Result;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::{granted_root, writable_root};

/// One object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the grant's root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl From<sluice_codec::local::ObjectInfo> for ObjectInfo {
    fn from(o: sluice_codec::local::ObjectInfo) -> Self {
        ObjectInfo {
            path: o.path,
            size: o.size,
            modified_ms: o.modified_ms,
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl From<wit::ObjectInfo> for ObjectInfo {
    fn from(o: wit::ObjectInfo) -> Self {
        ObjectInfo {
            path: o.path,
            size: o.size,
            modified_ms: o.modified_ms,
        }
    }
}

/// Objects matching a glob (`*.csv`, `**/*.parquet`), sorted by path.
///
/// # Errors
/// A config error when blob is not granted or the glob is bad.
pub fn list(pattern: &str) -> Result<Vec<ObjectInfo>> {
    #[cfg(not(target_arch = "wasm32"))]
    let found = sluice_codec::local::list(&granted_root()?, pattern)?;
    #[cfg(target_arch = "wasm32")]
    let found = wit::list(pattern)?;
    Ok(found.into_iter().map(ObjectInfo::from).collect())
}

/// The object at `path`, or `None` if there is none.
///
/// # Errors
/// When blob is not granted or the path leaves the grant.
pub fn stat(path: &str) -> Result<Option<ObjectInfo>> {
    #[cfg(not(target_arch = "wasm32"))]
    let found = sluice_codec::local::stat(&granted_root()?, path)?;
    #[cfg(target_arch = "wasm32")]
    let found = wit::stat(path)?;
    Ok(found.map(ObjectInfo::from))
}

/// Read `len` bytes at `offset`.
///
/// # Errors
/// When the object is missing or unreadable.
pub fn read(path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(sluice_codec::local::read(
        &granted_root()?,
        path,
        offset,
        len,
    )?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::read(path, offset, len)?)
}

/// Write a whole object.
///
/// # Errors
/// When the grant is read-only or the write fails.
pub fn write(path: &str, data: &[u8]) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(sluice_codec::local::write(&writable_root()?, path, data)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::write(path, data)?)
}

/// Rename an object (atomic on a local directory).
///
/// # Errors
/// When the grant is read-only or the rename fails.
pub fn rename(from: &str, to: &str) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(sluice_codec::local::rename(&writable_root()?, from, to)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::rename(from, to)?)
}

/// Delete an object; a missing one is not an error.
///
/// # Errors
/// When the grant is read-only or the delete fails.
pub fn delete(path: &str) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(sluice_codec::local::delete(&writable_root()?, path)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::delete(path)?)
}
