//! Finding plugin files for the names a job uses.

use std::path::{Path, PathBuf};

use sluice_registry::Lock;
use sluice_runtime::{Plugin, PluginKind, Runtime};

use crate::error::{Error, Result};
use crate::job::PluginRef;

/// Directories searched for `<kind>-<name>.wasm`, first match wins.
#[derive(Debug, Clone, Default)]
pub struct PluginDirs(pub Vec<PathBuf>);

impl PluginDirs {
    /// The default search path: `$SLUICE_PLUGIN_PATH` (colon-separated),
    /// then `.sluice/plugins`, then `plugins/` beside the `sluice` binary.
    pub fn from_env() -> PluginDirs {
        let mut dirs = Vec::new();
        if let Ok(path) = std::env::var("SLUICE_PLUGIN_PATH") {
            dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs.push(PathBuf::from(".sluice/plugins"));
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("plugins")))
        {
            dirs.push(dir);
        }
        PluginDirs(dirs)
    }

    /// Every plugin file in the search path, for `sluice plugin list`.
    pub fn all_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.0 {
            if let Ok(entries) = std::fs::read_dir(dir) {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                    .collect();
                files.sort();
                out.extend(files);
            }
        }
        out
    }

    /// Load the plugin a step names and check its kind and version; its
    /// `info()` runs under `limits` (the job's `exec:`).
    ///
    /// # Errors
    /// Not found, wrong kind, wrong version, or a load failure.
    pub fn load(
        &self,
        runtime: &Runtime,
        reference: &str,
        kind: PluginKind,
        at: &str,
        base_dir: &Path,
        limits: &sluice_runtime::Limits,
    ) -> Result<Plugin> {
        let (path, version) = match PluginRef::parse(reference) {
            PluginRef::File(p) => {
                let p = if p.is_absolute() { p } else { base_dir.join(p) };
                (p, None)
            }
            PluginRef::Named { name, version } => {
                match locked(base_dir, &name, kind, version.as_deref(), at)? {
                    Some(path) => (path, None),
                    None => {
                        let file = format!("{}-{name}.wasm", kind.as_str());
                        let found = self.0.iter().map(|d| d.join(&file)).find(|p| p.is_file());
                        match found {
                            Some(p) => (p, version),
                            None => {
                                return Err(Error::PluginNotFound {
                                    at: at.into(),
                                    kind: kind.as_str(),
                                    name,
                                    file,
                                    searched: self.0.clone(),
                                });
                            }
                        }
                    }
                }
            }
        };
        let plugin = runtime.load_with(&path, limits)?;
        if plugin.info().kind != kind {
            return Err(sluice_runtime::Error::WrongKind {
                plugin: plugin.name().into(),
                expected: kind.as_str(),
                actual: plugin.info().kind.as_str(),
            }
            .into());
        }
        if let Some(wanted) = version {
            let found = &plugin.info().version;
            if !version_matches(&wanted, found) {
                return Err(Error::Version {
                    at: at.into(),
                    name: plugin.name().into(),
                    wanted,
                    found: found.clone(),
                });
            }
        }
        Ok(plugin)
    }
}

/// A job's version requirement, read as Cargo reads one: `0.1` accepts
/// `0.1.x`, `^0.2.1` and `0.2.1` accept `0.2.y` from `0.2.1` on, `=0.2.1`
/// only that.
fn version_matches(wanted: &str, found: &str) -> bool {
    match (
        semver::VersionReq::parse(wanted),
        semver::Version::parse(found),
    ) {
        (Ok(req), Ok(version)) => req.matches(&version),
        _ => wanted == found,
    }
}

/// When a `sluice.lock` at or above `base_dir` pins `name`, the locked
/// bytes: the job's requirement must accept the locked version, and the
/// file must be there with the locked sha256 (checked at every load, so a
/// changed file is caught before it runs). `None` when nothing pins it.
fn locked(
    base_dir: &Path,
    name: &str,
    kind: PluginKind,
    wanted: Option<&str>,
    at: &str,
) -> Result<Option<PathBuf>> {
    let Some(lock_path) = Lock::find(base_dir) else {
        return Ok(None);
    };
    let refuse = |message: String| Error::Locked {
        at: at.into(),
        name: name.into(),
        message,
    };
    let lock = Lock::read(&lock_path).map_err(|e| refuse(e.to_string()))?;
    let Some(entry) = lock.get(name, kind.as_str()) else {
        return Ok(None);
    };
    if let Some(wanted) = wanted
        && !version_matches(wanted, &entry.version.to_string())
    {
        return Err(refuse(format!(
            "{} locks version {}, the job asks for {wanted}: run `sluice plugin install {name}@{wanted}`",
            lock_path.display(),
            entry.version
        )));
    }
    let dir = lock_path.parent().unwrap_or(Path::new("."));
    let path = entry.path(dir);
    let bytes = std::fs::read(&path).map_err(|e| {
        refuse(format!(
            "{} locks version {}, but {} cannot be read ({e}): run `sluice plugin install` \
             to fetch what the lockfile lists",
            lock_path.display(),
            entry.version,
            path.display()
        ))
    })?;
    let found = sluice_registry::sha256_hex(&bytes);
    if found != entry.sha256 {
        return Err(refuse(format!(
            "{} is not the locked artifact (its sha256 is {found}, {} locks {}): it was \
             changed after installing; run `sluice plugin install` to restore it",
            path.display(),
            lock_path.display(),
            entry.sha256
        )));
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_matches("0.1", "0.1.0"));
        assert!(version_matches("0.1.3", "0.1.3"));
        assert!(version_matches("^0.1.2", "0.1.3"));
        assert!(!version_matches("=0.1.2", "0.1.3"));
        assert!(!version_matches("0.1", "0.10.0"));
        assert!(!version_matches("0.2", "0.1.0"));
    }
}
