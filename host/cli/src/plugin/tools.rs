//! What the Python and JavaScript builds share: where their pinned tools
//! are cached, and running a tool with its failure said.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

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
