//! JavaScript and TypeScript plugins: `plugin new --lang js` and `plugin
//! build` of a project whose package.json has a `"sluice"` object.
//!
//! The build bundles the plugin with the SDK (rolldown; TypeScript types
//! are stripped, not checked) and makes the bundle a component with
//! componentize-js, both pinned and installed from npm into the cache
//! the first time (offline after that). The SDK and the contract's WIT
//! are inside the `sluice` binary and written out beside the tools, so a
//! plugin always builds against the SDK of the sluice that will run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sluice_runtime::Runtime;

use super::Kind;
use super::embedded::{JS_SDK, WIT, write_tree};
use super::tools::{Scaffold, cache_root, run, run_captured, scaffold, write_project};

/// The componentize-js release plugins are built with. (jco 1.35 pins an
/// older one and cannot read a WIT directory without a preopen, so it is
/// called directly.)
pub(crate) const COMPONENTIZE_JS: &str = "0.23.0";
/// The rolldown release that bundles a plugin with the SDK.
pub(crate) const ROLLDOWN: &str = "1.3.4";

/// What `"sluice"` in package.json says.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageSluice {
    /// `source`, `filter` or `sink`.
    kind: String,
    /// The module whose default export is the plugin (default `src/app.ts`).
    #[serde(default = "default_main")]
    main: String,
}

fn default_main() -> String {
    "src/app.ts".into()
}

#[derive(serde::Deserialize)]
struct Package {
    sluice: Option<PackageSluice>,
}

fn read_project(dir: &Path) -> Result<PackageSluice> {
    let path = dir.join("package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let package: Package = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a package.json sluice reads", path.display()))?;
    let project = package.sluice.with_context(|| {
        format!(
            "{} has no \"sluice\" object: add `\"sluice\": {{\"kind\": \"source\", \"main\": \"src/app.ts\"}}` \
             (kind: source, filter or sink)",
            path.display()
        )
    })?;
    if !["source", "filter", "sink"].contains(&project.kind.as_str()) {
        bail!(
            "{}: sluice.kind = {:?}: use source, filter or sink",
            path.display(),
            project.kind
        );
    }
    Ok(project)
}

/// The pinned rolldown and componentize-js, installed with npm into a
/// directory of their own the first time.
pub(crate) fn tools() -> Result<PathBuf> {
    let dir = cache_root()?.join("tools").join(format!(
        "js-componentize-{COMPONENTIZE_JS}-rolldown-{ROLLDOWN}"
    ));
    // Written last: a directory without it is an install that was cut short.
    let complete = dir.join(".sluice-complete");
    if complete.is_file() {
        return Ok(dir);
    }
    eprintln!(
        "installing componentize-js {COMPONENTIZE_JS} and rolldown {ROLLDOWN} into {} (once; offline after this)",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("package.json"),
        format!(
            "{{\"private\": true, \"dependencies\": {{\"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS}\", \"rolldown\": \"{ROLLDOWN}\"}}}}\n"
        ),
    )?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir))
    .context(
        "installing componentize-js and rolldown from npm: is Node.js (with npm) installed?",
    )?;
    std::fs::write(&complete, format!("{COMPONENTIZE_JS} {ROLLDOWN}"))?;
    Ok(dir)
}

/// The JavaScript SDK, written out to the cache.
pub(crate) fn sdk() -> Result<PathBuf> {
    write_tree(&cache_root()?.join("sdk").join("js"), JS_SDK)
}

/// Build the JavaScript or TypeScript plugin in `dir`.
pub(super) fn build(runtime: &Runtime, dir: &Path, out: Option<&Path>) -> Result<()> {
    let project = read_project(dir)?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let main = dir.join(&project.main);
    if !main.is_file() {
        bail!(
            "package.json says sluice.main = {:?}, but there is no {}",
            project.main,
            main.display()
        );
    }
    let tools = tools()?;
    let cache = cache_root()?;
    let wit = write_tree(&cache.join("wit"), WIT)?;
    let sdk = sdk()?;
    let work = dir.join("target").join("sluice").join("js");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let kind = &project.kind;
    let entry = work.join("entry.js");
    std::fs::write(
        &entry,
        format!(
            "// Written by `sluice plugin build`: the plugin's default export as the\n\
             // component's `{kind}` export.\n\
             import plugin from {main};\n\
             import {{ {kind}Exports }} from {glue};\n\
             if (plugin?.kind !== {kind:?}) {{\n  \
               throw new Error(`{main_name}: the default export must be made by {kind}(...) (package.json says sluice.kind = {kind:?}), not ${{plugin?.kind ?? typeof plugin}}`);\n\
             }}\n\
             export const {kind} = {kind}Exports(plugin);\n",
            main = serde_json::to_string(&main.display().to_string())?,
            glue = serde_json::to_string(
                &sdk.join("src/component")
                    .join(format!("{kind}.js"))
                    .display()
                    .to_string()
            )?,
            main_name = project.main,
        ),
    )?;
    let built = work.join("plugin.wasm");
    let job = work.join("build.json");
    std::fs::write(
        &job,
        serde_json::to_vec_pretty(&serde_json::json!({
            "entry": entry,
            "bundle": work.join("bundle.js"),
            "out": built,
            "wit": wit,
            // Every JS plugin gets the world with `wasi:http` imported, so
            // the SDK's `http` works wherever a job grants it (without a
            // grant the host refuses each request).
            "world": format!("{kind}-plugin-http"),
            // The engine's own `fetch` is asynchronous and a contract call
            // cannot wait for a promise: the SDK calls `wasi:http` itself.
            "disableFeatures": ["http", "fetch-event"],
        }))?,
    )?;
    run_captured(
        Command::new("node")
            .arg(sdk.join("bin").join("sluice-js-build.mjs"))
            .arg(&job)
            .env("SLUICE_JS_TOOLS", &tools)
            .current_dir(&dir),
        &format!(
            "could not build {} (node, with rolldown and componentize-js)",
            dir.display()
        ),
    )?;
    super::build::finish(runtime, &dir, &built, out)
}

const PACKAGE_JSON: &str = include_str!("../../templates/js/package.json.tmpl");
const TSCONFIG: &str = include_str!("../../templates/js/tsconfig.json.tmpl");
const README: &str = include_str!("../../templates/js/README.md.tmpl");
const APP_SOURCE: &str = include_str!("../../templates/js/source.ts.tmpl");
const APP_FILTER: &str = include_str!("../../templates/js/filter.ts.tmpl");
const APP_SINK: &str = include_str!("../../templates/js/sink.ts.tmpl");
const TEST_SOURCE: &str = include_str!("../../templates/js/test_source.ts.tmpl");
const TEST_FILTER: &str = include_str!("../../templates/js/test_filter.ts.tmpl");
const TEST_SINK: &str = include_str!("../../templates/js/test_sink.ts.tmpl");

/// Write a new TypeScript plugin project into `dir`.
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
    let sdk = sdk()?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{kind}}", kind_name)
            .replace("{{test_args}}", test_args)
            .replace("{{rolldown}}", ROLLDOWN)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    write_project(
        dir,
        &[
            ("package.json", PACKAGE_JSON),
            ("tsconfig.json", TSCONFIG),
            ("README.md", README),
            ("src/app.ts", app),
            ("test/app.test.ts", test),
            (".gitignore", "target/\nnode_modules/\n"),
        ],
        fill,
    )?;
    println!(
        "created {kind_name} plugin {name} (TypeScript) in {}",
        dir.display()
    );
    println!(
        "next:\n  cd {}\n  npm install\n  npm test\n  sluice plugin build\n  sluice plugin test target/sluice/{name}.wasm {test_args}",
        dir.display()
    );
    Ok(())
}
