//! Object storage on a local directory: what a `blob` grant of a directory
//! means. Paths are relative, use `/`, and may not leave the root.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use crate::error::Error;
use crate::store::{self, ObjectInfo, ObjectStore, ObjectWriter, Staged};

/// Largest single `read`: larger reads are streamed in ranges.
pub const MAX_READ: u64 = 64 << 20;

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
    out.extend(store::normalize(path)?.split('/'));
    Ok(out)
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, fs::Metadata)>) -> io::Result<()> {
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

/// A local directory tree as an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// The tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Names temporary files uniquely within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A hidden name beside `full` for writing it before it appears.
fn temp_beside(full: &Path) -> PathBuf {
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    full.with_file_name(format!(".{name}.sluice-{}-{seq}", std::process::id()))
}

impl ObjectStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, pattern: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>, Error> {
        let glob = store::glob(pattern)?;
        let mut found = Vec::new();
        let base = self.root.join(store::glob_prefix(pattern));
        match walk(&base, &self.root, &mut found) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && base != self.root => {}
            Err(e) => return Err(Error::io(&self.root.display().to_string(), e)),
        }
        let mut objects: Vec<ObjectInfo> = found
            .into_iter()
            .filter(|(path, _)| glob.is_match(path))
            .filter(|(path, _)| start_after.is_none_or(|after| path.as_str() > after))
            .filter(|(path, _)| !is_temp_name(path))
            .map(|(path, meta)| object_info(path, &meta))
            .collect();
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>, Error> {
        let full = resolve(&self.root, path)?;
        match fs::metadata(&full) {
            Ok(meta) if meta.is_file() => Ok(Some(object_info(path.to_string(), &meta))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn read(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let len = len.min(MAX_READ);
        let mut buf = Vec::with_capacity(len as usize);
        self.open(path, offset)?
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        Ok(buf)
    }

    fn open(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, Error> {
        let full = resolve(&self.root, path)?;
        let mut file = fs::File::open(&full).map_err(|e| Error::io(path, e))?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(Box::new(file))
    }

    fn local_file(&self, path: &str) -> Result<Option<PathBuf>, Error> {
        resolve(&self.root, path).map(Some)
    }

    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        let full = resolve(&self.root, path)?;
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(path, e))?;
        }
        fs::write(&full, data).map_err(|e| Error::io(path, e))
    }

    fn create(&self, path: &str, staged: bool) -> Result<Box<dyn ObjectWriter>, Error> {
        let full = resolve(&self.root, path)?;
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(path, e))?;
        }
        let temp = temp_beside(&full);
        let file = fs::File::create(&temp).map_err(|e| Error::io(path, e))?;
        Ok(Box::new(LocalWriter {
            file: Some(file),
            temp: TempFile(Some(temp)),
            full,
            path: path.to_string(),
            staged,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let src = resolve(&self.root, from)?;
        let dst = resolve(&self.root, to)?;
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(to, e))?;
        }
        fs::rename(&src, &dst).map_err(|e| Error::io(from, e))
    }

    fn delete(&self, path: &str) -> Result<(), Error> {
        let full = resolve(&self.root, path)?;
        match fs::remove_file(&full) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Whether a file name is one of ours in the middle of being written.
fn is_temp_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with('.') && name.contains(".sluice-")
}

/// A temporary file, removed when dropped unless taken.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes a hidden temporary file and renames it into place.
struct LocalWriter {
    file: Option<fs::File>,
    temp: TempFile,
    full: PathBuf,
    path: String,
    staged: bool,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("object already finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl ObjectWriter for LocalWriter {
    fn finish(mut self: Box<Self>) -> Result<Option<Box<dyn Staged>>, Error> {
        if let Some(mut file) = self.file.take() {
            file.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        let staged = LocalStaged {
            temp: TempFile(self.temp.0.take()),
            full: std::mem::take(&mut self.full),
            path: std::mem::take(&mut self.path),
        };
        if self.staged {
            Ok(Some(Box::new(staged)))
        } else {
            Box::new(staged).publish()?;
            Ok(None)
        }
    }
}

/// A finished local file under its temporary name.
struct LocalStaged {
    temp: TempFile,
    full: PathBuf,
    path: String,
}

impl Staged for LocalStaged {
    fn publish(mut self: Box<Self>) -> Result<(), Error> {
        let temp = self.temp.0.take().expect("a staged file has its temporary");
        fs::rename(&temp, &self.full).map_err(|e| {
            let _ = fs::remove_file(&temp);
            Error::io(&self.path, e)
        })
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
        let store = LocalStore::new(dir.path());
        let names = |pat: &str| {
            store
                .list(pat, None)
                .unwrap()
                .into_iter()
                .map(|o| o.path)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("*.csv"), ["a.csv", "b.csv"]);
        assert_eq!(names("**/*.csv"), ["a.csv", "b.csv", "sub/d.csv"]);
        assert!(store.list("../*.csv", None).is_err());
        assert!(store.list("/etc/*", None).is_err());
        let after: Vec<_> = store
            .list("**/*.csv", Some("b.csv"))
            .unwrap()
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(after, ["sub/d.csv"]);
    }

    #[test]
    fn staged_files_appear_only_when_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let mut w = store.create("out/a.csv", true).unwrap();
        w.write_all(b"x\n").unwrap();
        let staged = w.finish().unwrap().expect("staged");
        assert!(store.stat("out/a.csv").unwrap().is_none());
        assert!(store.list("**", None).unwrap().is_empty());
        staged.publish().unwrap();
        assert_eq!(std::fs::read(dir.path().join("out/a.csv")).unwrap(), b"x\n");

        // Dropped before publishing, or before finishing: nothing is left.
        let mut w = store.create("out/b.csv", true).unwrap();
        w.write_all(b"y").unwrap();
        drop(w.finish().unwrap());
        let mut w = store.create("out/c.csv", false).unwrap();
        w.write_all(b"z").unwrap();
        drop(w);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["a.csv"]);
    }
}
