//! `sluice.lock`: the exact plugins a project runs.
//!
//! `sluice plugin install` writes it; commit it with the jobs. A job that
//! names a plugin listed here runs exactly the locked bytes (their sha256
//! is checked at every load), from the project's `.sluice/plugins/`, with
//! no registry needed.

use std::path::{Path, PathBuf};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The lockfile's name.
pub const LOCK_FILE: &str = "sluice.lock";

const HEADER: &str = "# sluice.lock: the exact plugins this project runs, written by \
`sluice plugin install`.\n# Commit it; `sluice plugin install` with no arguments brings \
back exactly these.\n\n";

/// A parsed lockfile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The format's version.
    pub version: u32,
    /// The plugins, by name.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<Locked>,
}

impl Default for Lock {
    fn default() -> Lock {
        Lock {
            version: 1,
            plugins: Vec::new(),
        }
    }
}

/// One locked plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// Its name.
    pub name: String,
    /// `source`, `filter` or `sink`.
    pub kind: String,
    /// The exact version.
    pub version: Version,
    /// The artifact's sha256: the bytes every run must load.
    pub sha256: String,
    /// The `sluice:plugin` WIT version it targets.
    pub wit: String,
    /// Where it came from.
    pub registry: String,
    /// The key that signed it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl Lock {
    /// The nearest `sluice.lock` in `dir` or a directory above it.
    pub fn find(dir: &Path) -> Option<PathBuf> {
        let start = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
        start
            .ancestors()
            .map(|d| d.join(LOCK_FILE))
            .find(|p| p.is_file())
    }

    /// Read a lockfile.
    ///
    /// # Errors
    /// When it cannot be read or does not parse (naming the file).
    pub fn read(path: &Path) -> Result<Lock> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let lock: Lock = toml::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        if lock.version != 1 {
            return Err(Error::Invalid(format!(
                "{}: lockfile version {} is newer than this sluice understands (1)",
                path.display(),
                lock.version
            )));
        }
        Ok(lock)
    }

    /// Write it atomically (a half-written lockfile is never seen).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut sorted = self.clone();
        sorted
            .plugins
            .sort_by(|a, b| (&a.name, &a.kind).cmp(&(&b.name, &b.kind)));
        let body = toml::to_string(&sorted)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let temp = path.with_extension("lock.tmp");
        std::fs::write(&temp, format!("{HEADER}{body}"))
            .map_err(|e| Error::io(temp.display().to_string(), e))?;
        std::fs::rename(&temp, path).map_err(|e| Error::io(path.display().to_string(), e))
    }

    /// The locked plugin called `name` of `kind`.
    pub fn get(&self, name: &str, kind: &str) -> Option<&Locked> {
        self.plugins
            .iter()
            .find(|p| p.name == name && p.kind == kind)
    }

    /// Add `locked`, replacing what was locked under its name and kind.
    pub fn upsert(&mut self, locked: Locked) {
        self.plugins
            .retain(|p| !(p.name == locked.name && p.kind == locked.kind));
        self.plugins.push(locked);
    }
}

impl Locked {
    /// Where its bytes are kept, for a lockfile in `lock_dir`.
    pub fn path(&self, lock_dir: &Path) -> PathBuf {
        lock_dir
            .join(".sluice")
            .join("plugins")
            .join(format!("{}-{}-{}.wasm", self.kind, self.name, self.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_finds() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("jobs/daily");
        std::fs::create_dir_all(&nested).unwrap();
        assert!(Lock::find(&nested).is_none());
        let mut lock = Lock::default();
        let locked = Locked {
            name: "hello".into(),
            kind: "source".into(),
            version: Version::parse("0.2.1").unwrap(),
            sha256: "ab".repeat(32),
            wit: "0.1.0".into(),
            registry: "/srv/registry".into(),
            signed_by: Some("ed25519:xyz".into()),
        };
        lock.upsert(locked.clone());
        lock.upsert(locked.clone());
        let path = dir.path().join(LOCK_FILE);
        lock.write(&path).unwrap();
        let found = Lock::find(&nested).unwrap();
        let again = Lock::read(&found).unwrap();
        assert_eq!(again.plugins, vec![locked.clone()]);
        assert_eq!(again.get("hello", "source"), Some(&locked));
        assert!(again.get("hello", "sink").is_none());
        assert!(
            locked
                .path(dir.path())
                .ends_with(".sluice/plugins/source-hello-0.2.1.wasm")
        );
        std::fs::write(&path, "version = 1\n[[plugin]]\nname = 3\n").unwrap();
        let e = Lock::read(&path).unwrap_err().to_string();
        assert!(e.contains("sluice.lock"), "{e}");
    }
}
