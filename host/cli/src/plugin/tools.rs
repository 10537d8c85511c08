//! What the Python and JavaScript builds share: where their pinned tools
//! are cached, and running a tool with its failure said.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Kind;

/// Where the tools and trees of a build are kept (see [`crate::cache_root`]).
pub(super) fn cache_root() -> Result<PathBuf> {
    crate::cache_root()
        .context("neither XDG_CACHE_HOME nor HOME is set: where should tools be cached?")
}

/// Run `cmd`, failing with the command line when it fails.
pub(super) fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

/// Run a build tool with its output captured, shown only when it fails:
/// `failed` says what could not be done.
pub(super) fn run_captured(cmd: &mut Command, failed: &str) -> Result<()> {
    let shown = format!("{:?}", cmd.get_program());
    let output = cmd.output().with_context(|| format!("running {shown}"))?;
    if !output.status.success() {
        bail!(
            "{failed}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A new Python or JavaScript plugin's program and test, by kind, and the
/// config its README passes `sluice plugin test`.
pub(super) struct Scaffold {
    pub app: &'static str,
    pub test: &'static str,
    pub test_args: &'static str,
}

/// Pick the templates of `kind` from `[source, filter, sink]` pairs of
/// (program, test).
pub(super) fn scaffold(kind: Kind, templates: [(&'static str, &'static str); 3]) -> Scaffold {
    let ([app, test], test_args) = match kind {
        Kind::Source => (templates[0].into(), "--config '{\"rows\": 1000}'"),
        Kind::Filter => (templates[1].into(), "--config '{\"column\": \"email\"}'"),
        Kind::Sink => (templates[2].into(), ""),
    };
    Scaffold {
        app,
        test,
        test_args,
    }
}

/// Write each template, filled in, to its path under `dir`.
pub(super) fn write_project(
    dir: &Path,
    files: &[(&str, &str)],
    fill: impl Fn(&str) -> String,
) -> Result<()> {
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, fill(template))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
