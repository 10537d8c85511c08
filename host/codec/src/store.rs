//! Object stores: what a `blob` grant points at.
//!
//! A grant is a local directory or an object-store prefix (`s3://bucket/raw/`).
//! Plugins and the codec see one interface, [`ObjectStore`], with paths
//! relative to the grant's root. Writes go through [`ObjectWriter`]s that
//! stream (an S3 multipart upload, a local file) and can be *staged*: the
//! object stays invisible until it is published, so a sink's output appears
//! only when its task commits, on any backend, without a copy.

use std::io::{Read, Write};
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use crate::error::Error;

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

/// A granted tree of objects. Every path is relative to its root and may not
/// leave it (see [`normalize`]).
///
/// Calls block: plugins call them from their task's thread.
pub trait ObjectStore: Send + Sync + 'static {
    /// Where the root is, for messages: `/data/in` or `s3://bucket/raw/`.
    fn location(&self) -> String;

    /// Objects whose path matches `pattern` (a glob), sorted by path; with
    /// `start_after`, only paths after it (an object store lists from there
    /// instead of from the start).
    fn list(&self, pattern: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>, Error>;

    /// The object at `path`, if there is one.
    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>, Error>;

    /// Up to `len` bytes at `offset`.
    fn read(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error>;

    /// The object from `offset` to its end, streamed.
    fn open(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, Error>;

    /// The local file behind `path`, opened, when there is one: the codec
    /// then reads it with positioned reads instead of through
    /// [`ObjectStore::open`].
    fn open_local(&self, _path: &str) -> Result<Option<std::fs::File>, Error> {
        Ok(None)
    }

    /// The local directory behind the store, when there is one: where the
    /// host itself keeps files that belong beside the output (rejected rows).
    fn local_root(&self) -> Option<&Path> {
        None
    }

    /// Discard what a writer that never finished left behind, named by the
    /// token it gave ([`ObjectWriter::staging_token`]): a temporary file, an
    /// open multipart upload. Missing is not an error.
    fn discard_orphan(&self, _token: &str) -> Result<(), Error> {
        Ok(())
    }

    /// Publish at `path` an object an earlier process finished and committed
    /// but did not live to publish, named by [`Staged::staging_token`]. An
    /// object already published is not an error.
    fn publish_orphan(&self, token: &str, path: &str) -> Result<(), Error> {
        Err(Error::config(format!(
            "{}: cannot publish {path} ({token}) left by an earlier run",
            self.location()
        )))
    }

    /// Write a whole object, replacing it.
    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error>;

    /// Start writing `path`. Dropping the writer without
    /// [`ObjectWriter::finish`] leaves no object (an S3 upload is aborted).
    /// With `staged`, `finish` returns a [`Staged`] object that appears only
    /// when published.
    fn create(&self, path: &str, staged: bool) -> Result<Box<dyn ObjectWriter>, Error>;

    /// [`ObjectStore::create`], handing the writer's staging token to
    /// `record` before anything exists that a killed process could leave
    /// behind (the journal's entry comes first).
    ///
    /// # Errors
    /// As `create`, or what `record` returns (then nothing is created).
    fn create_recorded(
        &self,
        path: &str,
        staged: bool,
        record: &mut dyn FnMut(&str) -> Result<(), Error>,
    ) -> Result<Box<dyn ObjectWriter>, Error> {
        // A store whose writer makes nothing until its first write (an S3
        // upload starts with its first part) can record after creating.
        let writer = self.create(path, staged)?;
        if let Some(token) = writer.staging_token() {
            record(&token)?;
        }
        Ok(writer)
    }

    /// Rename within the root (atomic on a local directory; a server-side
    /// copy and delete on an object store).
    fn rename(&self, from: &str, to: &str) -> Result<(), Error>;

    /// Delete; a missing object is not an error.
    fn delete(&self, path: &str) -> Result<(), Error>;

    /// The URI another service reads the object at `path` by
    /// (`gs://bucket/name` for a BigQuery load), where there is one.
    fn uri(&self, _path: &str) -> Option<String> {
        None
    }
}

/// An object being written.
pub trait ObjectWriter: Write + Send {
    /// What [`ObjectStore::discard_orphan`] needs to clean up after this
    /// writer if its process dies before it finishes or is published.
    fn staging_token(&self) -> Option<String> {
        None
    }

    /// Complete the object. It is visible when this returns, unless it was
    /// created staged: then it is the returned [`Staged`] object's to publish.
    fn finish(self: Box<Self>) -> Result<Option<Box<dyn Staged>>, Error>;
}

/// A complete object not yet visible. Dropping it discards it.
pub trait Staged: Send {
    /// As [`ObjectWriter::staging_token`]: for a finished object, what
    /// [`ObjectStore::publish_orphan`] needs to publish it from another
    /// process.
    fn staging_token(&self) -> Option<String> {
        None
    }

    /// Make it visible under its path, replacing what was there. When this
    /// fails the object is still staged: dropping it discards it.
    fn publish(&mut self) -> Result<(), Error>;

    /// Let go of it without publishing or discarding it: it stays staged
    /// for a later run to publish or discard by its token.
    fn keep(self: Box<Self>);

    /// The URI another service reads its bytes by while it is staged
    /// ([`ObjectStore::uri`]).
    fn uri(&self) -> Option<String> {
        None
    }

    /// Make it visible under another path of the same root (a BigQuery
    /// load names its input after the load job). Where the store cannot,
    /// a config error.
    fn publish_to(&mut self, path: &str) -> Result<(), Error> {
        let _ = path;
        Err(Error::config(
            "this store cannot publish a staged object under another name",
        ))
    }
}

/// A relative path in canonical form (`a/b.csv`), refusing anything that
/// would leave the root: `..`, absolute paths, empty paths.
///
/// # Errors
/// A config error naming the path.
pub fn normalize(path: &str) -> Result<String, Error> {
    let leaves = || {
        Error::config(format!(
            "path `{path}` leaves the granted root; use a path relative to it"
        ))
    };
    if path.starts_with('/') || path.starts_with('\\') || path.contains('\\') {
        return Err(leaves());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(leaves()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(Error::config(format!("path `{path}` names no object")));
    }
    Ok(parts.join("/"))
}

/// A compiled glob over relative paths (`*` stays within one directory,
/// `**` crosses them).
///
/// # Errors
/// A config error for a bad glob or one that leaves the root.
pub fn glob(pattern: &str) -> Result<GlobMatcher, Error> {
    if pattern.starts_with('/') || pattern.split('/').any(|part| part == "..") {
        return Err(Error::config(format!(
            "pattern `{pattern}` leaves the granted root; use a path relative to it"
        )));
    }
    Ok(GlobBuilder::new(pattern.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .map_err(|e| Error::config(format!("bad glob `{pattern}`: {e}")))?
        .compile_matcher())
}

/// The directory part of a glob before its first wildcard: an object store
/// lists only under it. `raw/2024-*/*.csv` → `raw/`; `*.csv` → ``.
pub fn glob_prefix(pattern: &str) -> &str {
    let pattern = pattern.trim_start_matches("./");
    let wild = pattern
        .find(['*', '?', '[', '{', '\\'])
        .unwrap_or(pattern.len());
    match pattern[..wild].rfind('/') {
        Some(slash) => &pattern[..=slash],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_refuses_escapes() {
        assert_eq!(normalize("a/./b.csv").unwrap(), "a/b.csv");
        assert_eq!(normalize("a//b.csv").unwrap(), "a/b.csv");
        for bad in ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", "", "."] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_of_globs() {
        assert_eq!(glob_prefix("raw/2024-*/*.csv"), "raw/");
        assert_eq!(glob_prefix("*.csv"), "");
        assert_eq!(glob_prefix("a/b/c.csv"), "a/b/");
        assert_eq!(glob_prefix("./a/**/x"), "a/");
        assert!(glob("../*.csv").is_err());
        assert!(glob("a/[").is_err());
    }
}
