//! `sluice plugin build`: a plugin's source to a component, whatever its
//! language.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sluice_runtime::Runtime;

/// Add the wasm32-wasip2 target when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc: is Rust installed?")?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib/wasm32-wasip2")
        .is_dir()
    {
        return Ok(());
    }
    eprintln!("installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    let status = std::process::Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("rustup target add wasm32-wasip2 failed");
    }
    Ok(())
}

/// Build the plugin in `dir`, in whichever language it is written.
pub(super) fn build(runtime: &Runtime, dir: &Path, out: Option<&Path>) -> Result<()> {
    if dir.join("Cargo.toml").is_file() {
        rust(runtime, dir, out)
    } else if dir.join("pyproject.toml").is_file() {
        super::python::build(runtime, dir, out)
    } else if dir.join("package.json").is_file() {
        super::js::build(runtime, dir, out)
    } else {
        bail!(
            "{} has no Cargo.toml (a Rust plugin), pyproject.toml (a Python plugin) or \
             package.json (a JavaScript plugin): start one with \
             `sluice plugin new NAME --kind source --lang rust|python|js`",
            dir.display()
        )
    }
}

fn rust(runtime: &Runtime, dir: &Path, out: Option<&Path>) -> Result<()> {
    let manifest = dir.join("Cargo.toml");
    ensure_wasm_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = std::process::Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .context("running cargo metadata")?;
    if !metadata.status.success() {
        bail!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&metadata.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let package = &metadata["packages"][0];
    let crate_name = package["name"]
        .as_str()
        .context("cargo metadata: no package")?;
    let is_cdylib = package["targets"].as_array().is_some_and(|targets| {
        targets.iter().any(|t| {
            t["crate_types"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
    });
    if !is_cdylib {
        bail!(
            "{crate_name}: add `crate-type = [\"cdylib\", \"rlib\"]` under [lib] to build a component"
        );
    }
    let target_dir = PathBuf::from(
        metadata["target_directory"]
            .as_str()
            .context("cargo metadata: no target directory")?,
    );
    // No debug info, symbols stripped, and no `+simd128`: what the
    // first-party plugins are built with. Under epoch deadlines wasmtime's
    // code for Arrow's SIMD loops ran slower than for its scalar ones.
    let status = std::process::Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args([
            "--config",
            "profile.release.strip=true",
            "--config",
            "profile.release.debug=false",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of {crate_name} failed");
    }
    let built = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    finish(runtime, dir, &built, out)
}

/// Load what was built (proving it is a plugin this host runs), copy it to
/// `out` (default: DIR/target/sluice/NAME.wasm) and say what it is.
pub(super) fn finish(
    runtime: &Runtime,
    dir: &Path,
    built: &Path,
    out: Option<&Path>,
) -> Result<()> {
    let plugin = runtime
        .load(built)
        .with_context(|| format!("{} built, but does not load", built.display()))?;
    let info = plugin.info();
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        dir.join("target")
            .join("sluice")
            .join(format!("{}.wasm", info.name))
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if built != out {
        std::fs::copy(built, &out).with_context(|| format!("copying to {}", out.display()))?;
    }
    let size = std::fs::metadata(&out)?.len();
    println!(
        "built {} ({:.1} KiB): {} plugin {} {}, sluice:plugin@{}",
        out.display(),
        size as f64 / 1024.0,
        info.kind.as_str(),
        info.name,
        info.version,
        plugin.wit_version()
    );
    Ok(())
}
