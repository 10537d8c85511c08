//! `blob`: object storage scoped to a granted local directory.
//!
//! Paths from plugins are relative, use `/`, and may not name `..` or an
//! absolute path: a plugin cannot see outside its root.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use globset::GlobBuilder;

use crate::bindings::blob::{Host, ObjectInfo};
use crate::bindings::types::Error as GuestError;
use crate::capability::{BlobGrant, HostState, config_error, io_error};

/// Largest single `read` a plugin may ask for: reads are streamed in ranges.
const MAX_READ: u64 = 64 << 20;

/// Resolve a plugin-given path inside `root`, refusing escapes.
pub(crate) fn resolve(root: &Path, path: &str) -> Result<PathBuf, GuestError> {
    let rel = Path::new(path);
    let mut out = root.to_path_buf();
    for part in rel.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(config_error(format!(
                    "path `{path}` leaves the granted directory; use a path relative to it"
                )));
            }
        }
    }
    Ok(out)
}

fn writable(grant: &BlobGrant, plugin: &str) -> Result<(), GuestError> {
    if grant.writable {
        Ok(())
    } else {
        Err(config_error(format!(
            "plugin {plugin} has a read-only blob grant"
        )))
    }
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

/// List the objects under `root` matching `pattern`, sorted by path.
pub(crate) fn list(root: &Path, pattern: &str) -> Result<Vec<ObjectInfo>, GuestError> {
    if pattern.starts_with('/') || pattern.split('/').any(|part| part == "..") {
        return Err(config_error(format!(
            "pattern `{pattern}` leaves the granted directory; use a path relative to it"
        )));
    }
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| config_error(format!("bad glob `{pattern}`: {e}")))?
        .compile_matcher();
    let mut found = Vec::new();
    walk(root, root, &mut found).map_err(|e| io_error(&root.display().to_string(), e))?;
    let mut objects: Vec<ObjectInfo> = found
        .into_iter()
        .filter(|(path, _)| glob.is_match(path))
        .map(|(path, meta)| ObjectInfo {
            path,
            size: meta.len(),
            modified_ms: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        })
        .collect();
    objects.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(objects)
}

impl Host for HostState {
    fn list(&mut self, pattern: String) -> wasmtime::Result<Result<Vec<ObjectInfo>, GuestError>> {
        let grant = match self.blob_grant("blob") {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(list(&grant.root, &pattern))
    }

    fn read(
        &mut self,
        path: String,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            let full = resolve(&grant.root, &path)?;
            let len = len.min(MAX_READ);
            let mut file = fs::File::open(&full).map_err(|e| io_error(&path, e))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| io_error(&path, e))?;
            let mut buf = Vec::with_capacity(len as usize);
            file.take(len)
                .read_to_end(&mut buf)
                .map_err(|e| io_error(&path, e))?;
            Ok(buf)
        })())
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> wasmtime::Result<Result<(), GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            writable(grant, &self.plugin)?;
            let full = resolve(&grant.root, &path)?;
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent).map_err(|e| io_error(&path, e))?;
            }
            fs::write(&full, data).map_err(|e| io_error(&path, e))
        })())
    }

    fn rename(&mut self, from: String, to: String) -> wasmtime::Result<Result<(), GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            writable(grant, &self.plugin)?;
            let src = resolve(&grant.root, &from)?;
            let dst = resolve(&grant.root, &to)?;
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(|e| io_error(&to, e))?;
            }
            fs::rename(&src, &dst).map_err(|e| io_error(&from, e))
        })())
    }

    fn delete(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            writable(grant, &self.plugin)?;
            let full = resolve(&grant.root, &path)?;
            match fs::remove_file(&full) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(&path, e)),
            }
        })())
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
