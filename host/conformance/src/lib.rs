//! The conformance suite: what every Sluice plugin must do, checked against
//! the real component in the real runtime (`sluice plugin test x.wasm`).
//!
//! Each check says what it proved, or what went wrong and what to change.
//! Checks that need a working config (reading rows, writing them) use the
//! one given in [`Options::config`], else `{}` when the plugin's schema
//! accepts it, else they are skipped and say how to run them.

mod data;
mod filter;
mod sink;
mod source;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_runtime::{BlobGrant, ErrorKind, Grants, Plugin, PluginKind, Runtime};

/// What the suite may use.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A config that works (for a source: one that reads something).
    pub config: Option<Value>,
    /// A directory to grant as `blob` (read-only for a source; a sink gets
    /// a fresh writable directory when none is given).
    pub blob_dir: Option<PathBuf>,
    /// The limits every call runs under (`--call-timeout` sets the deadline).
    pub limits: sluice_runtime::Limits,
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It holds; what was seen.
    Passed(String),
    /// It does not; what happened and what to do.
    Failed(String),
    /// Not run; why, and how to run it.
    Skipped(String),
}

/// One check of the suite.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked, in a few words.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// The whole suite's result for one plugin.
#[derive(Debug, Clone)]
pub struct Report {
    /// The plugin's name and version, or its file when it did not load.
    pub plugin: String,
    /// The checks, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check that ran passed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    fn push(&mut self, name: &str, outcome: Outcome) {
        self.checks.push(Check {
            name: name.to_string(),
            outcome,
        });
    }
}

/// Run the suite on the component at `path`.
pub fn run(runtime: &Runtime, path: &Path, options: &Options) -> Report {
    let mut report = Report {
        plugin: path.display().to_string(),
        checks: Vec::new(),
    };
    let plugin = match runtime.load_with(path, &options.limits) {
        Ok(p) => p,
        Err(e) => {
            report.push(
                "loads as a component of a supported sluice:plugin version",
                Outcome::Failed(format!(
                    "{e}\n  build it with `sluice plugin build` (wasm32-wasip2, sluice-sdk)"
                )),
            );
            return report;
        }
    };
    let info = plugin.info().clone();
    report.plugin = format!("{} {} ({})", info.name, info.version, info.kind.as_str());
    report.push(
        "loads as a component of a supported sluice:plugin version",
        Outcome::Passed(format!("sluice:plugin@{}", plugin.wit_version())),
    );
    report.push("info() describes the plugin", check_info(&plugin));
    for (what, bad) in bad_configs(&info.config_schema) {
        let name = format!("a bad config ({what}) is a config error, not a trap");
        report.push(&name, refuses(&plugin, &bad, options.limits));
    }
    let config = match usable_config(&plugin, options) {
        Ok(config) => config,
        Err(why) => {
            report.push("reads and writes data", Outcome::Skipped(why));
            return report;
        }
    };
    match info.kind {
        PluginKind::Source => source::checks(&plugin, &config, options, &mut report),
        PluginKind::Filter => filter::checks(&plugin, &config, options.limits, &mut report),
        PluginKind::Sink => sink::checks(&plugin, &config, options, &mut report),
    }
    report
}

fn check_info(plugin: &Plugin) -> Outcome {
    let info = plugin.info();
    let mut problems = Vec::new();
    let name_ok = !info.name.is_empty()
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        problems.push(format!(
            "name {:?} must be lowercase letters, digits, '-' or '_' (it names the plugin in jobs and registries)",
            info.name
        ));
    }
    if semver::Version::parse(&info.version).is_err() {
        problems.push(format!(
            "version {:?} is not semver (x.y.z): use env!(\"CARGO_PKG_VERSION\")",
            info.version
        ));
    }
    if info.config_schema.get("type").and_then(Value::as_str) != Some("object") {
        problems.push(
            "the config schema must describe an object (\"type\": \"object\"): derive JsonSchema on a struct"
                .into(),
        );
    }
    if problems.is_empty() {
        Outcome::Passed(format!(
            "{} {}, config schema with {} properties",
            info.name,
            info.version,
            info.config_schema
                .get("properties")
                .and_then(Value::as_object)
                .map_or(0, |p| p.len())
        ))
    } else {
        Outcome::Failed(problems.join("\n  "))
    }
}

/// Configs the schema refuses: not JSON, a required key missing, a value
/// of the wrong type.
fn bad_configs(schema: &Value) -> Vec<(String, String)> {
    let mut out = vec![("not JSON".to_string(), "{not json".to_string())];
    if let Some(required) = schema.get("required").and_then(Value::as_array)
        && !required.is_empty()
    {
        out.push((
            format!(
                "`{}` missing",
                required[0].as_str().unwrap_or("a required key")
            ),
            "{}".to_string(),
        ));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, prop) in props {
            let wrong = match prop.get("type").and_then(Value::as_str) {
                Some("string") => json!(12345),
                Some("integer") | Some("number") => json!("not a number"),
                Some("boolean") => json!("yes"),
                Some("array") => json!(7),
                Some("object") => json!(7),
                _ => continue,
            };
            let mut config = serde_json::Map::new();
            config.insert(key.clone(), wrong.clone());
            out.push((
                format!("`{key}`: {wrong}"),
                Value::Object(config).to_string(),
            ));
            break;
        }
    }
    out
}

/// The plugin must refuse `config` with a config error.
fn refuses(plugin: &Plugin, config: &str, limits: sluice_runtime::Limits) -> Outcome {
    let result = match plugin.info().kind {
        PluginKind::Source => plugin
            .source(Arc::new(Grants::default()), limits)
            .and_then(|mut s| s.check(config)),
        PluginKind::Sink => plugin
            .sink(Arc::new(Grants::default()), limits)
            .and_then(|mut s| s.check(config)),
        PluginKind::Filter => plugin
            .filter(Arc::new(Grants::default()), limits)
            .and_then(|f| f.into_transformer(config, &data::sample_schema()))
            .map(|_| ()),
    };
    match result {
        Err(sluice_runtime::Error::Plugin {
            kind: ErrorKind::Config,
            message,
            ..
        }) => Outcome::Passed(format!("config error: {message}")),
        Err(sluice_runtime::Error::Plugin { kind, message, .. }) => Outcome::Failed(format!(
            "refused with a {kind} ({message}); a config problem should be Error::config, so the host shows it and never retries"
        )),
        Err(e) => Outcome::Failed(format!(
            "{e}\n  parse the config into a serde type and return Error::config on failure (sluice_sdk does this for typed configs)"
        )),
        Ok(()) => Outcome::Failed(format!(
            "accepted {config}, which its own schema refuses: the host validates configs, but the plugin must not rely on it"
        )),
    }
}

/// The config the data checks use.
fn usable_config(plugin: &Plugin, options: &Options) -> Result<String, String> {
    let config = options.config.clone().unwrap_or_else(|| json!({}));
    match plugin.validate_config(&config, "config") {
        Ok(()) => Ok(config.to_string()),
        Err(e) if options.config.is_none() => Err(format!(
            "the plugin needs a config ({e}): pass one with --config '{{…}}' to check its data"
        )),
        Err(e) => Err(format!(
            "the given config does not fit the plugin's schema: {e}"
        )),
    }
}

/// Grants for the data checks: `dir` as the blob grant.
fn grants(dir: Option<&Path>, writable: bool) -> Result<Arc<Grants>, String> {
    let blob = match dir {
        Some(d) => Some(BlobGrant {
            store: Arc::new(
                sluice_codec::LocalStore::open(d)
                    .map_err(|e| format!("the blob directory {}: {e}", d.display()))?,
            ),
            writable,
        }),
        None => None,
    };
    Ok(Arc::new(Grants {
        blob,
        ..Grants::default()
    }))
}
