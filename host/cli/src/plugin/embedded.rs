//! The contract's WIT and the Python and JavaScript SDKs, inside the binary (listed by
//! `build.rs`), written out to the cache when a build needs them.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Write `files` under `base/<hash of the files>/` unless already there,
/// and return that directory. The hash keeps two sluice versions from
/// sharing a directory; the rename makes a half-written tree invisible.
pub(crate) fn write_tree(base: &Path, files: &[(&str, &str)]) -> Result<PathBuf> {
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    let dir = base.join(format!("{:016x}", hasher.finish()));
    if dir.is_dir() {
        return Ok(dir);
    }
    let partial = base.join(format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    for (rel, text) in files {
        let path = partial.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    match std::fs::rename(&partial, &dir) {
        Ok(()) => Ok(dir),
        // Another build wrote the same tree first: use it.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&partial);
            Ok(dir)
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
    }
}
