//! Object storage on a local directory: what a `blob` grant of a directory
//! means. Paths are relative, use `/`, and may not leave the root.
//!
//! The root is held as an open directory handle, and every path resolves
//! beneath it (cap-std: `openat2` with `RESOLVE_BENEATH` where the kernel
//! has it, a component-by-component walk elsewhere), never by checking
//! strings. A symlink inside the grant that points elsewhere inside it is
//! followed; one that leads outside (absolute, or up through `..`) is an
//! error on read, write, rename and delete, and is left out of listings.
//! Listings do not descend into symlinked directories, so a link cycle
//! cannot loop them.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use cap_std::fs::{Dir, Metadata, OpenOptions};

use crate::error::Error;
use crate::store::{self, ObjectInfo, ObjectStore, ObjectWriter, Staged};

/// Largest single `read`: larger reads are streamed in ranges.
pub const MAX_READ: u64 = 64 << 20;

fn object_info(path: String, meta: &Metadata) -> ObjectInfo {
    ObjectInfo {
        path,
        size: meta.len(),
        modified_ms: meta
            .modified()
            .ok()
            .and_then(|t| t.into_std().duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    }
}

/// An I/O error on `path` beneath the root, saying so when the path (a
/// symlink in it) leads outside the grant.
fn io_error(path: &str, e: io::Error) -> Error {
    // cap-std refuses a resolution that would leave the directory with
    // PermissionDenied and a message naming the escape.
    let text = e.to_string();
    if text.contains("outside") {
        return Error::config(format!(
            "{path}: leads outside the granted directory (through a symlink): refused"
        ));
    }
    Error::io(path, e)
}

/// A local directory tree as an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    dir: Arc<Dir>,
}

impl LocalStore {
    /// The tree under `root`, which must be a directory: it is opened now,
    /// and everything after resolves beneath this handle.
    ///
    /// # Errors
    /// When `root` cannot be opened as a directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        let shown = root.display().to_string();
        let dir = Dir::open_ambient_dir(&root, cap_std::ambient_authority())
            .map_err(|e| Error::io(&shown, e))?;
        Ok(LocalStore {
            root,
            dir: Arc::new(dir),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn walk(&self, dir: &str, out: &mut Vec<(String, Metadata)>) -> io::Result<()> {
        let entries = if dir.is_empty() {
            self.dir.entries()?
        } else {
            self.dir.read_dir(dir)?
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                self.walk(&rel, out)?;
            } else if kind.is_file() {
                out.push((rel, entry.metadata()?));
            } else if kind.is_symlink() {
                // Followed beneath the root: a link to a file inside the
                // grant is listed under its own path; one that leads out,
                // dangles or names a directory is not an object here.
                match self.dir.metadata(&rel) {
                    Ok(meta) if meta.is_file() => out.push((rel, meta)),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        root = %self.root.display(),
                        "{rel}: a symlink that does not resolve inside the grant is not listed: {e}"
                    ),
                }
            }
        }
        Ok(())
    }

    /// Open `path` beneath the root for reading.
    fn open_file(&self, path: &str) -> Result<std::fs::File, Error> {
        let rel = store::normalize(path)?;
        self.dir
            .open(&rel)
            .map(|f| f.into_std())
            .map_err(|e| io_error(path, e))
    }

    /// Create the directories above `rel`, beneath the root.
    fn parents(&self, path: &str, rel: &str) -> Result<(), Error> {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.dir
                .create_dir_all(parent)
                .map_err(|e| io_error(path, e))?;
        }
        Ok(())
    }
}

/// Names temporary files uniquely within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A hidden name beside `rel` for writing it before it appears.
fn temp_beside(rel: &str) -> String {
    let (dir, name) = match rel.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, rel),
    };
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let temp = format!(".{name}.sluice-{}-{seq}", std::process::id());
    match dir {
        Some(dir) => format!("{dir}/{temp}"),
        None => temp,
    }
}

impl ObjectStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, pattern: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>, Error> {
        let glob = store::glob(pattern)?;
        let mut found = Vec::new();
        let base = store::glob_prefix(pattern).trim_end_matches('/');
        match self.walk(base, &mut found) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && !base.is_empty() => {}
            Err(e) => return Err(io_error(&format!("{}/{base}", self.root.display()), e)),
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
        let rel = store::normalize(path)?;
        match self.dir.metadata(&rel) {
            Ok(meta) if meta.is_file() => Ok(Some(object_info(path.to_string(), &meta))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(path, e)),
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
        let mut file = self.open_file(path)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(Box::new(file))
    }

    fn open_local(&self, path: &str) -> Result<Option<std::fs::File>, Error> {
        self.open_file(path).map(Some)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        let mut writer = self.create(path, false)?;
        writer.write_all(data).map_err(|e| Error::io(path, e))?;
        writer.finish().map(|_| ())
    }

    fn create(&self, path: &str, staged: bool) -> Result<Box<dyn ObjectWriter>, Error> {
        self.create_recorded(path, staged, &mut |_| Ok(()))
    }

    fn create_recorded(
        &self,
        path: &str,
        staged: bool,
        record: &mut dyn FnMut(&str) -> Result<(), Error>,
    ) -> Result<Box<dyn ObjectWriter>, Error> {
        let rel = store::normalize(path)?;
        self.parents(path, &rel)?;
        let temp = temp_beside(&rel);
        // Recorded before the file exists: a kill right after creating it
        // leaves a file the journal knows about.
        record(&temp)?;
        let file = self
            .dir
            .open_with(&temp, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| io_error(path, e))?
            .into_std();
        Ok(Box::new(LocalWriter {
            file: Some(file),
            temp: TempFile {
                dir: self.dir.clone(),
                rel: Some(temp),
            },
            rel,
            path: path.to_string(),
            staged,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let src = store::normalize(from)?;
        let dst = store::normalize(to)?;
        self.parents(to, &dst)?;
        self.dir
            .rename(&src, &self.dir, &dst)
            .map_err(|e| io_error(from, e))
    }

    fn delete(&self, path: &str) -> Result<(), Error> {
        let rel = store::normalize(path)?;
        match self.dir.remove_file(&rel) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(path, e)),
        }
    }

    fn publish_orphan(&self, token: &str, path: &str) -> Result<(), Error> {
        let temp = store::normalize(token)?;
        if !is_temp_name(&temp) {
            return Err(Error::config(format!(
                "{token}: not a temporary file of Sluice's, not published"
            )));
        }
        let rel = store::normalize(path)?;
        match self.dir.rename(&temp, &self.dir, &rel) {
            Ok(()) => Ok(()),
            // Published already (the process died after the rename).
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(path, e)),
        }
    }

    fn discard_orphan(&self, token: &str) -> Result<(), Error> {
        // A temporary file left by a writer that never finished: its name
        // is the token, and only our own temporary names are accepted.
        let rel = store::normalize(token)?;
        if !is_temp_name(&rel) {
            return Err(Error::config(format!(
                "{token}: not a temporary file of Sluice's, not removed"
            )));
        }
        match self.dir.remove_file(&rel) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(token, e)),
        }
    }
}

/// Whether a file name is one of ours in the middle of being written.
fn is_temp_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with('.') && name.contains(".sluice-")
}

/// A temporary file beneath the root, removed when dropped unless taken.
struct TempFile {
    dir: Arc<Dir>,
    rel: Option<String>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(rel) = self.rel.take() {
            let _ = self.dir.remove_file(rel);
        }
    }
}

/// Writes a hidden temporary file and renames it into place.
struct LocalWriter {
    file: Option<std::fs::File>,
    temp: TempFile,
    rel: String,
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
    fn staging_token(&self) -> Option<String> {
        self.temp.rel.clone()
    }

    fn finish(mut self: Box<Self>) -> Result<Option<Box<dyn Staged>>, Error> {
        if let Some(mut file) = self.file.take() {
            file.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        let staged = LocalStaged {
            temp: TempFile {
                dir: self.temp.dir.clone(),
                rel: self.temp.rel.take(),
            },
            rel: std::mem::take(&mut self.rel),
            path: std::mem::take(&mut self.path),
        };
        if self.staged {
            Ok(Some(Box::new(staged)))
        } else {
            let mut staged = staged;
            staged.publish()?;
            Ok(None)
        }
    }
}

/// A finished local file under its temporary name.
struct LocalStaged {
    temp: TempFile,
    rel: String,
    path: String,
}

impl Staged for LocalStaged {
    fn staging_token(&self) -> Option<String> {
        self.temp.rel.clone()
    }

    fn publish(&mut self) -> Result<(), Error> {
        let Some(temp) = self.temp.rel.as_deref() else {
            return Ok(());
        };
        let dir = &self.temp.dir;
        dir.rename(temp, dir, &self.rel)
            .map_err(|e| io_error(&self.path, e))?;
        self.temp.rel = None;
        Ok(())
    }

    fn keep(mut self: Box<Self>) {
        self.temp.rel = None;
    }
}

#[cfg(test)]
mod tests;
