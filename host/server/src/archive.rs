//! Project archives: what `sluice push` sends to a server's API (a gzipped
//! tar of the project's text files), and the checks that keep a hostile
//! archive from naming a path outside its project or filling memory.
//!
//! Nothing is written to disk while unpacking: the files become a revision
//! in the store, and a worker writes them later under its own directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::project::MAX_FILE_BYTES;

/// At most this many entries in one archive.
pub const MAX_ENTRIES: usize = 10_000;
/// At most this many bytes of files, unpacked, in one archive.
pub const MAX_UNPACKED_BYTES: u64 = 64 << 20;

/// Why an archive was refused. Each names the entry it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Not a gzipped tar, or cut short.
    #[error("not a readable .tar.gz project archive: {0}")]
    Corrupt(String),
    /// An entry whose path would land outside the project.
    #[error("entry {path:?}: {why}; a project archive holds relative paths inside the project")]
    UnsafePath {
        /// The entry's path, as the archive gives it.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A symlink, hard link, device or other entry that is not a file.
    #[error("entry {path:?} is a {kind}; a project archive holds regular files and directories")]
    NotAFile {
        /// The entry's path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A file that is not UTF-8 text.
    #[error("entry {path:?} is not UTF-8 text (a project holds workflows, jobs and queries)")]
    NotText {
        /// The entry's path.
        path: String,
    },
    /// A file, the total, or the entry count over its limit.
    #[error("{0}")]
    TooBig(String),
}

/// A gzipped tar of `files` (path → text), in path order, with fixed
/// metadata so the same files give the same bytes.
///
/// # Errors
/// Only if writing to memory fails.
pub fn pack(files: &BTreeMap<String, String>) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, text.as_bytes())?;
    }
    tar.into_inner()?.finish()
}

/// The files of a project archive, checked: relative paths without `..`,
/// only regular files and directories, UTF-8 text, and within
/// [`MAX_ENTRIES`], [`MAX_UNPACKED_BYTES`] and the per-file limit — counted
/// while decompressing, so an archive bomb stops at the limit, not after.
///
/// # Errors
/// The first entry that breaks a rule, named.
pub fn unpack(bytes: &[u8]) -> Result<BTreeMap<String, String>, ArchiveError> {
    // The decompressed stream is capped one byte past what the entries may
    // hold (with their headers), so reading past it shows as "too big".
    let budget = MAX_UNPACKED_BYTES + 1024 * (MAX_ENTRIES as u64 + 2);
    let mut archive = tar::Archive::new(GzDecoder::new(bytes).take(budget));
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for (count, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| corrupt_or_too_big(e, budget))?;
        if count >= MAX_ENTRIES {
            return Err(ArchiveError::TooBig(format!(
                "the archive holds more than {MAX_ENTRIES} entries"
            )));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            checked_path(&raw)?;
            continue;
        }
        if let Some(kind) = refused_kind(kind) {
            return Err(ArchiveError::NotAFile { path: raw, kind });
        }
        let path = checked_path(&raw)?;
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_FILE_BYTES {
            return Err(ArchiveError::TooBig(format!(
                "entry {raw:?} is {size} bytes; a project file holds at most {MAX_FILE_BYTES}"
            )));
        }
        total += size;
        if total > MAX_UNPACKED_BYTES {
            return Err(ArchiveError::TooBig(format!(
                "the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|e| corrupt_or_too_big(e, budget))?;
        let text = String::from_utf8(data).map_err(|_| ArchiveError::NotText { path: raw })?;
        files.insert(path, text);
    }
    Ok(files)
}

fn corrupt_or_too_big(e: std::io::Error, budget: u64) -> ArchiveError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ArchiveError::TooBig(format!(
            "the archive is cut short or unpacks to more than {budget} bytes"
        ))
    } else {
        ArchiveError::Corrupt(e.to_string())
    }
}

fn refused_kind(kind: tar::EntryType) -> Option<&'static str> {
    use tar::EntryType as T;
    match kind {
        T::Regular | T::Continuous => None,
        T::Symlink => Some("symbolic link"),
        T::Link => Some("hard link"),
        T::Char | T::Block => Some("device"),
        T::Fifo => Some("named pipe"),
        _ => Some("special entry"),
    }
}

/// The `/`-joined path inside the project, or why it is unsafe.
fn checked_path(raw: &str) -> Result<String, ArchiveError> {
    let unsafe_path = |why| ArchiveError::UnsafePath {
        path: raw.to_string(),
        why,
    };
    if raw.contains('\\') {
        return Err(unsafe_path("it contains a backslash"));
    }
    let mut parts = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_path("it climbs out with `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_path("it is an absolute path"));
            }
        }
    }
    if parts.is_empty() {
        return Err(unsafe_path("it names no file"));
    }
    if parts.iter().any(|p| p.starts_with('.')) {
        return Err(unsafe_path("it is hidden (a name starting with `.`)"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar.gz with one raw entry, its header written by hand so paths
    /// and kinds that `tar::Builder` would refuse can be made.
    fn archive_with(path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        {
            let old = header.as_old_mut();
            old.name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(link) = link {
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        header.set_cksum();
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        tar.append(&header, data).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn packed_files_unpack_to_the_same_files() {
        let files = BTreeMap::from([
            ("main.yaml".to_string(), "name: main\n".to_string()),
            ("jobs/load.yaml".to_string(), "in: {}\n".to_string()),
        ]);
        let bytes = pack(&files).unwrap();
        assert_eq!(unpack(&bytes).unwrap(), files);
        assert_eq!(pack(&files).unwrap(), bytes, "packing is deterministic");
    }

    #[test]
    fn paths_outside_the_project_are_refused() {
        for (path, why) in [
            ("../evil.yaml", "`..`"),
            ("jobs/../../evil.yaml", "`..`"),
            ("/etc/passwd", "absolute"),
            ("jobs\\..\\evil.yaml", "backslash"),
            (".git/config", "hidden"),
        ] {
            let bytes = archive_with(path, tar::EntryType::Regular, b"x", None);
            let err = unpack(&bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{path}: {err}");
            assert!(
                err.contains(&format!("{path:?}")),
                "{path}: the message names the entry: {err}"
            );
        }
    }

    #[test]
    fn links_and_devices_are_refused() {
        for (kind, name) in [
            (tar::EntryType::Symlink, "symbolic link"),
            (tar::EntryType::Link, "hard link"),
            (tar::EntryType::Char, "device"),
            (tar::EntryType::Fifo, "named pipe"),
        ] {
            let bytes = archive_with("main.yaml", kind, b"", Some("/etc/passwd"));
            let err = unpack(&bytes).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn an_archive_bomb_stops_at_the_limit() {
        // 200 MiB of zeros in one entry: about 200 KiB compressed. The
        // header claims the true size, so the per-file limit refuses it
        // before reading a byte of it.
        let zeros = vec![0u8; 200 << 20];
        let bytes = archive_with("big.yaml", tar::EntryType::Regular, &zeros, None);
        assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
        let err = unpack(&bytes).unwrap_err();
        assert!(matches!(err, ArchiveError::TooBig(_)), "{err}");
        // Many files each under the per-file limit: the total stops it.
        let file = "a".repeat(MAX_FILE_BYTES as usize);
        let files: BTreeMap<String, String> = (0..20)
            .map(|i| (format!("f{i}.yaml"), file.clone()))
            .collect();
        let err = unpack(&pack(&files).unwrap()).unwrap_err().to_string();
        assert!(err.contains("unpacks to more than"), "{err}");
    }

    #[test]
    fn garbage_and_binary_files_are_refused_by_name() {
        let err = unpack(b"not an archive at all").unwrap_err();
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
        let bytes = archive_with("data.bin", tar::EntryType::Regular, &[0xff, 0xfe, 0], None);
        let err = unpack(&bytes).unwrap_err().to_string();
        assert!(err.contains("data.bin") && err.contains("UTF-8"), "{err}");
    }
}
