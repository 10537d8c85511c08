//! Python plugins: `plugin new --lang python` and `plugin build` of a
//! project whose pyproject.toml has a `[tool.sluice]` table.
//!
//! The build runs componentize-py, pinned, from a virtualenv this command
//! makes under the cache directory the first time (from PyPI; offline after
//! that). The contract's WIT and the `sluice` Python package are inside the
//! `sluice` binary and written out beside it, so a plugin always builds
//! against the SDK of the sluice that will run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sluice_runtime::Runtime;

use super::Kind;
use super::embedded::{PYTHON_SDK, WIT, write_tree};
use super::tools::{Scaffold, cache_root, run, run_captured, scaffold, write_project};

/// The componentize-py release plugins are built with.
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";

/// What `[tool.sluice]` in pyproject.toml says.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolSluice {
    /// `source`, `filter` or `sink`.
    kind: String,
    /// The module that calls `sluice.export(...)` (default `app`).
    #[serde(default = "default_module")]
    module: String,
    /// Extra directories (relative to the project) with pure-Python
    /// packages to bundle, e.g. a `vendor/` filled by `pip install -t`.
    #[serde(default, rename = "python-path")]
    python_path: Vec<String>,
}

fn default_module() -> String {
    "app".into()
}

#[derive(serde::Deserialize)]
struct PyProject {
    tool: Option<Tools>,
}

#[derive(serde::Deserialize)]
struct Tools {
    sluice: Option<ToolSluice>,
}

fn read_project(dir: &Path) -> Result<ToolSluice> {
    let path = dir.join("pyproject.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let project: PyProject =
        toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
    let tool = project.tool.and_then(|t| t.sluice).with_context(|| {
        format!(
            "{} has no [tool.sluice] table: add `kind = \"source\"` (or filter, sink) and \
             `module = \"app\"` under [tool.sluice]",
            path.display()
        )
    })?;
    if !["source", "filter", "sink"].contains(&tool.kind.as_str()) {
        bail!(
            "{}: [tool.sluice] kind = {:?}: use source, filter or sink",
            path.display(),
            tool.kind
        );
    }
    Ok(tool)
}

/// The pinned componentize-py, installed into a virtualenv of its own the
/// first time.
fn componentize_py() -> Result<PathBuf> {
    let venv = cache_root()?
        .join("tools")
        .join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let bin = venv.join("bin").join("componentize-py");
    // Written last: a venv without it is an install that was cut short.
    let complete = venv.join(".sluice-complete");
    if bin.is_file() && complete.is_file() {
        return Ok(bin);
    }
    let python = std::env::var("SLUICE_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "installing componentize-py {COMPONENTIZE_PY} into {} (once; offline after this)",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv))
        .with_context(|| format!("{python} -m venv: is Python 3 installed? (set SLUICE_PYTHON)"))?;
    run(Command::new(venv.join("bin").join("python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        &format!("componentize-py=={COMPONENTIZE_PY}"),
    ]))
    .context("installing componentize-py from PyPI")?;
    std::fs::write(&complete, COMPONENTIZE_PY)?;
    Ok(bin)
}

/// Build the Python plugin in `dir`.
pub(super) fn build(runtime: &Runtime, dir: &Path, out: Option<&Path>) -> Result<()> {
    let project = read_project(dir)?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let module_file = dir.join(format!("{}.py", project.module.replace('.', "/")));
    let package_init = dir
        .join(project.module.replace('.', "/"))
        .join("__init__.py");
    if !module_file.is_file() && !package_init.is_file() {
        bail!(
            "[tool.sluice] module = {:?}, but there is no {}",
            project.module,
            module_file.display()
        );
    }
    let tool = componentize_py()?;
    let cache = cache_root()?;
    let wit = write_tree(&cache.join("wit"), WIT)?;
    let sdk = write_tree(&cache.join("sdk").join("python"), PYTHON_SDK)?;
    let work = dir.join("target").join("sluice").join("python");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    std::fs::write(
        work.join("sluice_entry.py"),
        format!(
            "# Written by `sluice plugin build`: imports the plugin's module.\nimport {}\n",
            project.module
        ),
    )?;
    let built = work.join("plugin.wasm");
    // Every Python plugin gets the world with `wasi:http` imported, so
    // `sluice.http` works wherever a job grants it; without a grant the
    // host refuses each request.
    let world = format!("{}-plugin-http", project.kind);
    let mut cmd = Command::new(&tool);
    cmd.arg("-d")
        .arg(&wit)
        .args(["-w", &world, "componentize", "sluice_app"])
        .arg("-p")
        .arg(&work)
        .arg("-p")
        .arg(&dir);
    for extra in &project.python_path {
        cmd.arg("-p").arg(dir.join(extra));
    }
    cmd.arg("-p")
        .arg(sdk.join("src"))
        .arg("-p")
        .arg(sdk.join("src").join("sluice").join("_component"))
        .arg("-o")
        .arg(&built)
        // No __pycache__ left in the author's project or the SDK.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&work);
    run_captured(
        &mut cmd,
        &format!("componentize-py could not build {}", dir.display()),
    )?;
    super::build::finish(runtime, &dir, &built, out)
}

const APP_SOURCE: &str = include_str!("../../templates/python/source.py.tmpl");
const APP_FILTER: &str = include_str!("../../templates/python/filter.py.tmpl");
const APP_SINK: &str = include_str!("../../templates/python/sink.py.tmpl");
const TEST_SOURCE: &str = include_str!("../../templates/python/test_source.py.tmpl");
const TEST_FILTER: &str = include_str!("../../templates/python/test_filter.py.tmpl");
const TEST_SINK: &str = include_str!("../../templates/python/test_sink.py.tmpl");
const PYPROJECT: &str = include_str!("../../templates/python/pyproject.toml.tmpl");
const README: &str = include_str!("../../templates/python/README.md.tmpl");

/// Write a new Python plugin project into `dir`.
pub(super) fn new(name: &str, kind: Kind, dir: &Path) -> Result<()> {
    let kind_name = kind.as_str();
    let Scaffold {
        app,
        test,
        test_args,
    } = scaffold(
        kind,
        [
            (APP_SOURCE, TEST_SOURCE),
            (APP_FILTER, TEST_FILTER),
            (APP_SINK, TEST_SINK),
        ],
    );
    let class = name
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<String>();
    let sdk = write_tree(&cache_root()?.join("sdk").join("python"), PYTHON_SDK)?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{class}}", &class)
            .replace("{{kind}}", kind_name)
            .replace("{{test_args}}", test_args)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    write_project(
        dir,
        &[
            ("pyproject.toml", PYPROJECT),
            ("README.md", README),
            ("app.py", app),
            ("test_app.py", test),
            (".gitignore", "target/\n__pycache__/\n.venv/\n"),
        ],
        fill,
    )?;
    println!(
        "created {kind_name} plugin {name} (Python) in {}",
        dir.display()
    );
    println!(
        "next:\n  cd {}\n  python3 -m venv .venv && .venv/bin/pip install {} pytest\n  .venv/bin/pytest\n  sluice plugin build\n  sluice plugin test target/sluice/{name}.wasm {test_args}",
        dir.display(),
        sdk.display()
    );
    Ok(())
}
