//! A project's files: a directory on this machine, or a pushed revision.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_workflow::Workflow;

use crate::{Error, Result};

/// Files bigger than this are not pushed (data does not belong in a project).
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// Where a project's files are.
#[derive(Debug, Clone)]
pub enum ProjectFiles {
    /// A directory (a workflow run in place).
    Dir(PathBuf),
    /// A pushed revision's files, path → text.
    Files(BTreeMap<String, String>),
}

impl ProjectFiles {
    /// Read a file by its path inside the project.
    ///
    /// # Errors
    /// A message when it is not there.
    pub fn read(&self, path: &str) -> std::result::Result<String, String> {
        match self {
            ProjectFiles::Dir(dir) => {
                std::fs::read_to_string(dir.join(path)).map_err(|e| e.to_string())
            }
            ProjectFiles::Files(files) => files
                .get(path)
                .cloned()
                .ok_or_else(|| "not in the project".to_string()),
        }
    }

    /// Every workflow file: (name, path). A workflow is a YAML file with
    /// a top-level `tasks:`.
    ///
    /// # Errors
    /// A workflow file that does not parse.
    pub fn workflows(&self) -> Result<Vec<(String, String, Workflow)>> {
        let mut out = Vec::new();
        for (path, text) in self.texts()? {
            if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            let is_workflow = serde_yaml::from_str::<serde_yaml::Value>(&text)
                .ok()
                .and_then(|v| v.as_mapping().map(|m| m.contains_key("tasks")))
                .unwrap_or(false);
            if is_workflow {
                let wf = Workflow::parse(&text, Path::new(&path))?;
                out.push((wf.name().to_string(), path, wf));
            }
        }
        let mut seen = std::collections::BTreeMap::new();
        for (name, path, _) in &out {
            if let Some(other) = seen.insert(name.clone(), path.clone()) {
                return Err(Error::Project(format!(
                    "two workflows are named {name}: {other} and {path}"
                )));
            }
        }
        Ok(out)
    }

    /// The workflow named `name`: (path, parsed). Only that file is
    /// parsed, so a broken file beside it does not stop it.
    ///
    /// # Errors
    /// No such workflow, or it does not parse.
    pub fn workflow(&self, name: &str) -> Result<(String, Workflow)> {
        for (path, text) in self.texts()? {
            if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            let Ok(serde_yaml::Value::Mapping(map)) = serde_yaml::from_str(&text) else {
                continue;
            };
            if !map.contains_key("tasks") {
                continue;
            }
            let stem = Path::new(&path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let declared = map
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_string)
                .unwrap_or(stem);
            if declared == name {
                let wf = Workflow::parse(&text, Path::new(&path))?;
                return Ok((path, wf));
            }
        }
        Err(Error::Project(format!("no workflow named {name}")))
    }

    fn texts(&self) -> Result<BTreeMap<String, String>> {
        match self {
            ProjectFiles::Files(files) => Ok(files.clone()),
            ProjectFiles::Dir(dir) => read_tree(dir, true),
        }
    }
}

/// Every text file under `dir` (hidden entries and `target/` left out),
/// keyed by its `/`-separated path inside it: what `sluice push` sends.
///
/// # Errors
/// A file that cannot be read, is not UTF-8, or is too big.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>> {
    read_tree(dir, false)
}

fn read_tree(dir: &Path, only_yaml: bool) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| Error::Project(format!("{}: {e}", current.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::Project(format!("{}: {e}", current.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| Error::Project(format!("{}: {e}", path.display())))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if only_yaml && !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            if meta.len() > MAX_FILE_BYTES {
                return Err(Error::Project(format!(
                    "{} is {} bytes; a project holds workflows, jobs and queries \
                     (at most {MAX_FILE_BYTES} bytes a file), not data",
                    path.display(),
                    meta.len()
                )));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::Project(format!(
                    "{}: {e} (a project holds text files)",
                    path.display()
                ))
            })?;
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(rel, text);
        }
    }
    Ok(files)
}

/// Write a revision's files under `root` once; later calls reuse them.
///
/// # Errors
/// When the directory cannot be written.
pub fn materialize(root: &Path, files: &BTreeMap<String, String>) -> std::io::Result<()> {
    if root.join(".complete").exists() {
        return Ok(());
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // Unique per call: a worker's tasks of one attempt materialize the
    // same revision at once, in one process as well as in several.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!(
        ".{}.tmp-{}-{call}",
        root.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    for (path, text) in files {
        if path.split('/').any(|part| part == ".." || part.is_empty()) {
            continue;
        }
        let target = tmp.join(path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(target, text)?;
    }
    std::fs::write(tmp.join(".complete"), "")?;
    match std::fs::rename(&tmp, root) {
        Ok(()) => Ok(()),
        // Another worker in this directory got there first.
        Err(_) if root.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tasks of one attempt start together and each materializes the
    /// revision: all of them must find it whole.
    #[test]
    fn many_tasks_materialize_one_revision_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("revisions").join("1");
        let files: BTreeMap<String, String> = (0..50)
            .map(|i| (format!("jobs/j{i}.yaml"), format!("n: {i}\n")))
            .collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| materialize(&root, &files)))
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        });
        assert_eq!(
            std::fs::read_to_string(root.join("jobs/j49.yaml")).unwrap(),
            "n: 49\n"
        );
        let left: Vec<_> = std::fs::read_dir(root.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["1"], "no temporary directory is left behind");
    }
}
