//! Sinks: an aborted writer leaves nothing behind, a committed one leaves
//! its output, and a second commit of the same rows leaves the same.

use std::path::{Path, PathBuf};

use sluice_runtime::Plugin;

use crate::{Options, Outcome, Report, data, grants};

const STREAM: &str = "conformance";

/// Files under `dir`, recursively, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn checks(plugin: &Plugin, config: &str, options: &Options, report: &mut Report) {
    let scratch = tempfile::tempdir().ok();
    let dir = options
        .blob_dir
        .clone()
        .or_else(|| scratch.as_ref().map(|t| t.path().to_path_buf()));
    let grants = match grants(dir.as_deref(), true) {
        Ok(g) => g,
        Err(e) => {
            report.push("the blob directory opens", Outcome::Failed(e));
            return;
        }
    };
    let instance = || plugin.sink(grants.clone(), options.limits);
    report.push(
        "check() accepts the working config",
        match instance().and_then(|mut s| s.check(config)) {
            Ok(()) => Outcome::Passed("ok".into()),
            Err(e) => Outcome::Failed(e.to_string()),
        },
    );
    let before = dir.as_deref().map(files).unwrap_or_default();
    let write = |commit: bool, task: &str| -> Result<(), String> {
        let mut sink = instance().map_err(|e| e.to_string())?;
        sink.begin_stream(config, STREAM, true)
            .map_err(|e| e.to_string())?;
        let mut writer = instance()
            .and_then(|s| s.into_writer(config, STREAM, &data::sample_schema(), task))
            .map_err(|e| e.to_string())?;
        for n in 0..3 {
            writer
                .write(data::sample_batch(n))
                .map_err(|e| e.to_string())?;
        }
        if commit {
            // What the commit published appears once the host has saved
            // the commit's state; there is none here, so at once.
            writer
                .commit(None)
                .map_err(|e| e.to_string())?
                .pending
                .publish()?;
            sink.finish_stream(config, STREAM)
                .map_err(|e| e.to_string())?;
        } else {
            writer.abort();
        }
        Ok(())
    };
    let aborted = write(false, "0");
    let after_abort = dir.as_deref().map(files).unwrap_or_default();
    report.push(
        "abort() leaves nothing behind",
        match aborted {
            Err(e) => Outcome::Failed(format!("writing before the abort failed: {e}")),
            Ok(()) if dir.is_none() => Outcome::Skipped("no blob grant to look into".into()),
            Ok(()) if after_abort == before => Outcome::Passed("no new objects".into()),
            Ok(()) => Outcome::Failed(format!(
                "after abort() these appeared: {:?}; stage output (codec encoders with staged: true) \
                 and publish it only in commit()",
                after_abort
                    .iter()
                    .filter(|f| !before.contains(f))
                    .collect::<Vec<_>>()
            )),
        },
    );
    let committed = write(true, "0");
    let after_commit = dir.as_deref().map(files).unwrap_or_default();
    report.push(
        "commit() makes the rows visible",
        match committed {
            Err(e) => Outcome::Failed(e),
            Ok(()) if dir.is_none() => Outcome::Passed("committed".into()),
            Ok(()) if after_commit.len() > before.len() => {
                Outcome::Passed(format!("{} new objects", after_commit.len() - before.len()))
            }
            Ok(()) => Outcome::Failed(
                "commit() returned, but no object appeared in the granted directory".into(),
            ),
        },
    );
    let sizes = |files: &[PathBuf]| -> Vec<(PathBuf, u64)> {
        let root = dir.clone().unwrap_or_default();
        files
            .iter()
            .map(|f| {
                let size = std::fs::metadata(root.join(f))
                    .map(|m| m.len())
                    .unwrap_or(0);
                (f.clone(), size)
            })
            .collect()
    };
    let first = sizes(&after_commit);
    report.push(
        "the same rows committed again give the same output",
        match write(true, "0") {
            Err(e) => Outcome::Failed(e),
            Ok(()) if dir.is_none() => Outcome::Skipped("no blob grant to look into".into()),
            Ok(()) => {
                let second = sizes(&dir.as_deref().map(files).unwrap_or_default());
                let new: Vec<_> = second.iter().filter(|f| !first.contains(f)).collect();
                if second.len() == first.len()
                    || new.iter().all(|(_, s)| first.iter().any(|(_, t)| t == s))
                {
                    Outcome::Passed("same objects, same sizes".into())
                } else {
                    Outcome::Failed(format!(
                        "a second commit of the same rows left other output: {new:?}"
                    ))
                }
            }
        },
    );
}
