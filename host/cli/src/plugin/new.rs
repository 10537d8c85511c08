//! `sluice plugin new`: a working plugin to start from, in Rust, Python
//! or TypeScript.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use sluice_registry::valid_name;

use super::{Kind, Lang};

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.tmpl");
const README: &str = include_str!("../../templates/README.md.tmpl");
const GITIGNORE: &str = include_str!("../../templates/gitignore.tmpl");
const SOURCE: &str = include_str!("../../templates/source.rs.tmpl");
const FILTER: &str = include_str!("../../templates/filter.rs.tmpl");
const SINK: &str = include_str!("../../templates/sink.rs.tmpl");

/// The SDK this binary was built beside, when its source is still there.
fn sdk_beside_this_build() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| std::fs::canonicalize(&sdk).unwrap_or(sdk))
}

/// Create plugin `name` of `kind` in `lang`, in `dir` (default: ./NAME).
pub(super) fn new(
    name: &str,
    kind: Kind,
    lang: Lang,
    dir: Option<&Path>,
    sdk: Option<&str>,
) -> Result<()> {
    if !valid_name(name) {
        bail!("{name:?} is not a plugin name: use lowercase letters, digits, '-' and '_'");
    }
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    match lang {
        Lang::Rust => rust(name, kind, &dir, sdk),
        Lang::Python => super::python::new(name, kind, &dir),
        Lang::Js => super::js::new(name, kind, &dir),
    }
}

fn rust(name: &str, kind: Kind, dir: &Path, sdk: Option<&str>) -> Result<()> {
    let sdk = match sdk {
        Some(s) if Path::new(s).join("Cargo.toml").is_file() => {
            let path = std::fs::canonicalize(s).unwrap_or_else(|_| PathBuf::from(s));
            format!("{{ path = {:?} }}", path.display().to_string())
        }
        Some(version) => format!("{version:?}"),
        None => match sdk_beside_this_build() {
            Some(path) => format!("{{ path = {:?} }}", path.display().to_string()),
            None => "\"0.1\"".to_string(),
        },
    };
    let kind_name = kind.as_str();
    let description = format!("A Sluice {kind_name} plugin.");
    let (code, test_args, job) = match kind {
        Kind::Source => (
            SOURCE,
            "--config '{\"rows\": 1000}'".to_string(),
            format!(
                "source:\n  plugin: ./{name}/target/sluice/{name}.wasm\n  config: {{rows: 1000}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: numbers.csv}}"
            ),
        ),
        Kind::Filter => (
            FILTER,
            "--config '{\"column\": \"name\"}'".to_string(),
            format!(
                "filters:\n  - plugin: ./{name}/target/sluice/{name}.wasm\n    config: {{column: customer_id}}"
            ),
        ),
        Kind::Sink => (
            SINK,
            String::new(),
            format!(
                "sink:\n  plugin: ./{name}/target/sluice/{name}.wasm\n  grants: {{blob: ./out}}\n  config: {{path: \"{{stream}}-{{task}}.jsonl\"}}"
            ),
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", name)
            .replace("{{kind}}", kind_name)
            .replace("{{description}}", &description)
            .replace("{{sdk}}", &sdk)
            .replace("{{test_args}}", &test_args)
            .replace("{{job_snippet}}", &job)
    };
    super::tools::write_project(
        dir,
        &[
            ("Cargo.toml", CARGO_TOML),
            ("README.md", README),
            (".gitignore", GITIGNORE),
            ("src/lib.rs", code),
        ],
        fill,
    )?;
    println!("created {kind_name} plugin {name} in {}", dir.display());
    println!(
        "next:\n  cd {}\n  cargo test\n  sluice plugin build\n  sluice plugin test target/sluice/{name}.wasm {test_args}",
        dir.display()
    );
    Ok(())
}
