//! Object storage on a local directory: what a `blob` grant of a directory
//! means. Paths are relative, use `/`, and may not leave the root.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use globset::GlobBuilder;

use crate::error::Error;

/// Largest single `read`: larger reads are streamed in ranges.
pub const MAX_READ: u64 = 64 << 20;

/// One object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

fn object_info(path: String, meta: &fs::Metadata) -> ObjectInfo {
    ObjectInfo {
        path,
        size: meta.len(),
        modified_ms: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    }
}

/// Resolve a relative path inside `root`, refusing escapes.
///
/// # Errors
/// A config error for `..`, absolute paths and prefixes.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf, Error> {
    let mut out = root.to_path_buf();
    for part in Path::new(path).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(Error::config(format!(
                    "path `{path}` leaves the granted directory; use a path relative to it"
                )));
            }
        }
    }
    Ok(out)
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, fs::Metadata)>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            walk(&path, root, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, meta));
        }
    }
    Ok(())
}

/// The objects under `root` matching a glob (`*.csv`, `**/*.parquet`), sorted.
///
/// # Errors
/// A config error for a bad glob or one that leaves the root.
pub fn list(root: &Path, pattern: &str) -> Result<Vec<ObjectInfo>, Error> {
    if pattern.starts_with('/') || pattern.split('/').any(|part| part == "..") {
        return Err(Error::config(format!(
            "pattern `{pattern}` leaves the granted directory; use a path relative to it"
        )));
    }
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::config(format!("bad glob `{pattern}`: {e}")))?
        .compile_matcher();
    let mut found = Vec::new();
    walk(root, root, &mut found).map_err(|e| Error::io(&root.display().to_string(), e))?;
    let mut objects: Vec<ObjectInfo> = found
        .into_iter()
        .filter(|(path, _)| glob.is_match(path))
        .map(|(path, meta)| object_info(path, &meta))
        .collect();
    objects.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(objects)
}

/// The object at `path`, if there is one.
///
/// # Errors
/// When the path leaves the root or cannot be examined.
pub fn stat(root: &Path, path: &str) -> Result<Option<ObjectInfo>, Error> {
    let full = resolve(root, path)?;
    match fs::metadata(&full) {
        Ok(meta) if meta.is_file() => Ok(Some(object_info(path.to_string(), &meta))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Read up to `len` bytes (at most [`MAX_READ`]) at `offset`.
///
/// # Errors
/// When the object is missing or unreadable.
pub fn read(root: &Path, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
    let full = resolve(root, path)?;
    let len = len.min(MAX_READ);
    let mut file = fs::File::open(&full).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// Write a whole object, creating parent directories.
///
/// # Errors
/// When the write fails.
pub fn write(root: &Path, path: &str, data: &[u8]) -> Result<(), Error> {
    let full = resolve(root, path)?;
    if let Some(parent) = full.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(path, e))?;
    }
    fs::write(&full, data).map_err(|e| Error::io(path, e))
}

/// Rename an object (atomic within one file system).
///
/// # Errors
/// When the rename fails.
pub fn rename(root: &Path, from: &str, to: &str) -> Result<(), Error> {
    let src = resolve(root, from)?;
    let dst = resolve(root, to)?;
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(to, e))?;
    }
    fs::rename(&src, &dst).map_err(|e| Error::io(from, e))
}

/// Delete an object; a missing one is not an error.
///
/// # Errors
/// When the delete fails otherwise.
pub fn delete(root: &Path, path: &str) -> Result<(), Error> {
    let full = resolve(root, path)?;
    match fs::remove_file(&full) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let root = Path::new("/data");
        assert_eq!(
            resolve(root, "a/b.csv").unwrap(),
            Path::new("/data/a/b.csv")
        );
        assert_eq!(resolve(root, "./a.csv").unwrap(), Path::new("/data/a.csv"));
        assert!(resolve(root, "../etc/passwd").is_err());
        assert!(resolve(root, "a/../../x").is_err());
        assert!(resolve(root, "/etc/passwd").is_err());
    }

    #[test]
    fn list_matches_globs_sorted() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sub")).unwrap();
        for p in ["b.csv", "a.csv", "c.json", "sub/d.csv"] {
            fs::write(dir.path().join(p), "x").unwrap();
        }
        let names = |pat: &str| {
            list(dir.path(), pat)
                .unwrap()
                .into_iter()
                .map(|o| o.path)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("*.csv"), ["a.csv", "b.csv"]);
        assert_eq!(names("**/*.csv"), ["a.csv", "b.csv", "sub/d.csv"]);
        assert!(list(dir.path(), "../*.csv").is_err());
        assert!(list(dir.path(), "/etc/*").is_err());
    }
}
