//! Object storage granted by the job (`grants: {blob: …}`).
//!
//! Paths are relative to the grant's root; a plugin cannot leave it.

#[cfg(target_arch = "wasm32")]
use crate::__wit::sluice::plugin0_2_0::blob as wit;
use crate::Result;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::granted_store;

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
impl From<sluice_codec::ObjectInfo> for ObjectInfo {
    fn from(o: sluice_codec::ObjectInfo) -> Self {
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
    list_after(pattern, None)
}

/// Objects matching a glob whose path sorts after `start_after`: on an
/// object store only those are listed, however many came before.
///
/// # Errors
/// A config error when blob is not granted or the glob is bad.
pub fn list_after(pattern: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>> {
    #[cfg(not(target_arch = "wasm32"))]
    let found = granted_store()?.list(pattern, start_after)?;
    #[cfg(target_arch = "wasm32")]
    let found = wit::list(pattern, start_after)?;
    Ok(found.into_iter().map(ObjectInfo::from).collect())
}

/// The object at `path`, or `None` if there is none.
///
/// # Errors
/// When blob is not granted or the path leaves the grant.
pub fn stat(path: &str) -> Result<Option<ObjectInfo>> {
    #[cfg(not(target_arch = "wasm32"))]
    let found = granted_store()?.stat(path)?;
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
    return Ok(granted_store()?.read(path, offset, len)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::read(path, offset, len)?)
}

/// Write a whole object.
///
/// # Errors
/// When the grant is read-only or the write fails.
pub fn write(path: &str, data: &[u8]) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(granted_store()?.write(path, data)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::write(path, data)?)
}

/// Rename an object (atomic on a local directory; a copy and a delete on an
/// object store, so prefer staged writes and [`publish`]).
///
/// # Errors
/// When the grant is read-only or the rename fails.
pub fn rename(from: &str, to: &str) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(granted_store()?.rename(from, to)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::rename(from, to)?)
}

/// Delete an object; a missing one is not an error.
///
/// # Errors
/// When the grant is read-only or the delete fails.
pub fn delete(path: &str) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(granted_store()?.delete(path)?);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::delete(path)?)
}

/// Make an object written by a staged [`crate::codec::Encoder`] visible.
///
/// # Errors
/// When nothing is staged at `path` or the store refuses.
pub fn publish(path: &str) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::publish(path);
    #[cfg(target_arch = "wasm32")]
    Ok(wit::publish(path)?)
}

/// Discard a staged object (those never published are discarded anyway
/// when the plugin instance ends).
///
/// # Errors
/// Only on a host failure.
pub fn discard(path: &str) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::discard(path);
        Ok(())
    }
    #[cfg(target_arch = "wasm32")]
    Ok(wit::discard(path)?)
}
