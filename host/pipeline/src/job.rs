//! Job files: what to read, how to transform it, where to write it.
//!
//! ```yaml
//! source:
//!   plugin: file
//!   grants: { blob: ./data }
//!   config: { paths: ["*.csv"] }
//! filters:
//!   - plugin: select
//!     config: { where: "amount > 0" }
//! sink:
//!   plugin: file
//!   grants: { blob: ./out }
//!   config: { path: orders.parquet }
//! exec: { parallelism: 2 }
//! ```
//! Databases are declared once and granted by name:
//! `connections: {app: {url: "${env:APP_DB_URL}"}}`, then
//! `grants: {sql: [app]}` on the plugin that may use them.
//! `${env:NAME}` in any string is replaced by the variable's value (a
//! missing variable is an error naming where it was used); a value that is
//! exactly one placeholder takes the variable's type (`rows: ${env:ROWS}` is
//! a number). Grant paths are relative to the job file's directory.
//!
//! A `blob` grant may also be an S3 prefix, `grants: {blob: "s3://bucket/raw/"}`,
//! reached through the standard AWS credential chain; a job-level
//! `s3: {endpoint, region, path_style, profile}` (or the same keys beside
//! `url:` in the grant) points at an S3-compatible store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::error::{Error, Result};

/// A parsed job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The job's name: with a fingerprint of what it reads and writes, the
    /// key of its saved state. Default: the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Key the saved state by this text instead of the fingerprint of the
    /// source and sink (their plugins, configs and grants): for a job whose
    /// config changes every run (a session-dated output path) but whose
    /// incremental state should carry over.
    #[serde(default)]
    pub state_key: Option<String>,
    /// Where the data comes from.
    pub source: PluginStep,
    /// Transformations, in order.
    #[serde(default)]
    pub filters: Vec<PluginStep>,
    /// Where the data goes.
    pub sink: PluginStep,
    /// How to run.
    #[serde(default)]
    pub exec: Exec,
    /// Databases, by the name plugins are granted them under.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// How to reach S3 for `s3://` grants (each grant may override it).
    #[serde(default)]
    pub s3: S3Config,
    /// How to reach Google Cloud Storage for `gs://` grants (each grant may
    /// override it).
    #[serde(default)]
    pub gcs: GcsConfig,
    /// Secrets by name, usually `${env:NAME}`: a plugin granted one writes
    /// `${secret:name}` in a request header and the host puts the value in.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretValue>,
    /// The directory grant paths are relative to (the job file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file it came from, for messages.
    #[serde(skip)]
    pub file: PathBuf,
}

/// One plugin in a job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginStep {
    /// `name`, `name@version` (e.g. `file@0.1`), or a path to a `.wasm` file.
    pub plugin: String,
    /// Capabilities granted to this plugin.
    #[serde(default)]
    pub grants: GrantsConfig,
    /// The plugin's config, checked against its JSON Schema.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// Sources only: which streams to read (default: all).
    #[serde(default)]
    pub streams: Option<Vec<String>>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// What a job grants one plugin. Unknown capabilities are an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsConfig {
    /// A local directory (relative to the job file), an `s3://bucket/prefix/`
    /// or a `gs://bucket/prefix/` for `blob` and `codec`. Sources get it read-only; sinks may write.
    #[serde(default)]
    pub blob: Option<BlobLocation>,
    /// Names of `connections:` the plugin may open.
    #[serde(default)]
    pub sql: Vec<String>,
    /// Outgoing HTTP, to these hosts only.
    #[serde(default)]
    pub http: Option<HttpGrantConfig>,
    /// Names of `secrets:` the plugin's HTTP request headers may use.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// BigQuery: a project and the datasets in it the plugin may use.
    #[serde(default)]
    pub bigquery: Option<BigQueryGrantConfig>,
}

/// `grants: {bigquery: {project: my-proj, datasets: [analytics]}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQueryGrantConfig {
    /// The project jobs run (and are billed) in.
    pub project: String,
    /// The datasets the plugin may read, write and create tables in.
    pub datasets: Vec<String>,
    /// Where new datasets go and jobs run (`US`, `asia-northeast1`).
    #[serde(default)]
    pub location: Option<String>,
    /// A BigQuery-compatible endpoint (an emulator); by default
    /// `BIGQUERY_EMULATOR_HOST`, else Google's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// As `gcs.credentials`, which it defaults to: one GCP credential
    /// serves both.
    #[serde(default)]
    pub credentials: Option<String>,
}

/// `grants: {http: {hosts: [api.example.com], timeout: 30, max_response_mb: 64}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrantConfig {
    /// `api.example.com`, `*.example.com` (subdomains), `127.0.0.1:8080`.
    pub hosts: Vec<String>,
    /// Seconds to connect, to the first byte, and between bytes (default 30).
    #[serde(default = "default_http_timeout")]
    pub timeout: f64,
    /// Largest response body, MiB (default 64).
    #[serde(default = "default_max_response_mb")]
    pub max_response_mb: u64,
}

fn default_http_timeout() -> f64 {
    30.0
}

fn default_max_response_mb() -> u64 {
    64
}

/// A secret's value in the job: never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(pub String);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(…)")
    }
}

/// Where a `blob` grant points.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BlobLocation {
    /// A directory, or `s3://bucket/prefix/` reached with the job's `s3:`.
    Url(String),
    /// `{url: s3://…, endpoint: …}`: an S3 prefix with its own settings.
    Detailed(BlobTarget),
}

impl BlobLocation {
    /// The directory or URL.
    pub fn url(&self) -> &str {
        match self {
            BlobLocation::Url(url) => url,
            BlobLocation::Detailed(target) => &target.url,
        }
    }

    /// Whether this is an S3 prefix rather than a local directory.
    pub fn is_s3(&self) -> bool {
        self.url().starts_with("s3://")
    }

    /// Whether this is a Google Cloud Storage prefix.
    pub fn is_gcs(&self) -> bool {
        self.url().starts_with("gs://")
    }

    /// The GCS settings: the grant's own over the job's.
    pub fn gcs_settings(&self, job: &GcsConfig) -> GcsConfig {
        let (endpoint, credentials) = match self {
            BlobLocation::Url(_) => (None, None),
            BlobLocation::Detailed(t) => (t.endpoint.clone(), t.credentials.clone()),
        };
        GcsConfig {
            endpoint: endpoint.or_else(|| job.endpoint.clone()),
            credentials: credentials.or_else(|| job.credentials.clone()),
        }
    }

    /// The keys this grant sets that its kind of store does not have
    /// (`region` on a `gs://` grant, `credentials` on an `s3://` one).
    pub fn foreign_keys(&self) -> Vec<&'static str> {
        let BlobLocation::Detailed(t) = self else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        if !self.is_s3() {
            for (key, set) in [
                ("region", t.region.is_some()),
                ("path_style", t.path_style.is_some()),
                ("profile", t.profile.is_some()),
            ] {
                if set {
                    keys.push(key);
                }
            }
        }
        if !self.is_gcs() && t.credentials.is_some() {
            keys.push("credentials");
        }
        if !self.is_s3() && !self.is_gcs() && t.endpoint.is_some() {
            keys.push("endpoint");
        }
        keys
    }

    /// The S3 settings: the grant's own over the job's.
    pub fn s3_settings(&self, job: &S3Config) -> S3Config {
        let own = match self {
            BlobLocation::Url(_) => S3Config::default(),
            BlobLocation::Detailed(target) => S3Config {
                endpoint: target.endpoint.clone(),
                region: target.region.clone(),
                path_style: target.path_style,
                profile: target.profile.clone(),
            },
        };
        S3Config {
            endpoint: own.endpoint.or_else(|| job.endpoint.clone()),
            region: own.region.or_else(|| job.region.clone()),
            path_style: own.path_style.or(job.path_style),
            profile: own.profile.or_else(|| job.profile.clone()),
        }
    }
}

/// A `blob` grant written out as a mapping: the URL and, for this grant
/// only, the keys of [`S3Config`] or [`GcsConfig`]. (Spelled out rather than flattened:
/// serde's `flatten` would let a misspelt key through unnoticed.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobTarget {
    /// `s3://bucket/prefix/`, `gs://bucket/prefix/` (or a local directory).
    pub url: String,
    /// As `s3.endpoint` or `gcs.endpoint`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// As `s3.region`.
    #[serde(default)]
    pub region: Option<String>,
    /// As `s3.path_style`.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// As `s3.profile`.
    #[serde(default)]
    pub profile: Option<String>,
    /// As `gcs.credentials`.
    #[serde(default)]
    pub credentials: Option<String>,
}

/// How to reach Google Cloud Storage. Credentials are never written in the
/// job: `credentials` names them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// A GCS-compatible endpoint (an emulator); by default Google's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `application_default` (the default: `GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's file, the metadata server), `anonymous`, or a credentials
    /// file's JSON (a service-account key or a workload identity
    /// federation config), usually `${secret:gcp_credential}`.
    #[serde(default)]
    pub credentials: Option<String>,
}

/// How to reach S3. Everything is optional: credentials always come from
/// the AWS chain (environment, profile, ECS task role), never from the job.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// An S3-compatible endpoint, e.g. `http://127.0.0.1:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region (default: the chain's, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Path-style addressing (default: on with a custom endpoint).
    #[serde(default)]
    pub path_style: Option<bool>,
    /// A profile from `~/.aws/config`.
    #[serde(default)]
    pub profile: Option<String>,
}

/// A database the job connects to.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `postgres://user:password@host:5432/db` or `mysql://…`; usually
    /// `${env:APP_DB_URL}`, so the job file holds no password.
    pub url: String,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig").finish_non_exhaustive()
    }
}

/// How to run a transfer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// Tasks run at once (default: the number of cores).
    #[serde(default)]
    pub parallelism: Option<usize>,
    /// Memory cap per plugin instance, MiB (default 512).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Deadline for one call into a plugin, seconds (default 60).
    #[serde(default = "default_call_timeout")]
    pub call_timeout: f64,
    /// Batches buffered between a reader and its writer (default 4).
    #[serde(default = "default_queue")]
    pub queue_batches: usize,
    /// Retries of a task after a transient error (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Commit within a task at the first source checkpoint after this many
    /// rows, and save the state there: a crash then repeats at most this
    /// many rows of a long partition (default: commit once, at the end).
    #[serde(default)]
    pub commit_every_rows: Option<u64>,
    /// Error and log messages from plugins are cut beyond this many bytes
    /// (default 65536).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Names a plugin returns (streams, partitions, columns, outputs) are
    /// refused beyond this many bytes (default 4096).
    #[serde(default = "default_max_name_bytes")]
    pub max_name_bytes: usize,
    /// A schema a plugin returns is refused beyond this many bytes
    /// (default 16 MiB).
    #[serde(default = "default_max_schema_bytes")]
    pub max_schema_bytes: usize,
    /// One checkpoint's state is refused beyond this many bytes
    /// (default 16 MiB).
    #[serde(default = "default_max_state_bytes")]
    pub max_state_bytes: usize,
    /// One batch a plugin builds is refused beyond this many MiB
    /// (default 512).
    #[serde(default = "default_max_batch_mb")]
    pub max_batch_mb: usize,
}

fn default_memory_mb() -> u64 {
    512
}
fn default_call_timeout() -> f64 {
    60.0
}
fn default_queue() -> usize {
    4
}
fn default_retries() -> u32 {
    2
}
fn default_max_message_bytes() -> usize {
    sluice_runtime::OutputCaps::default().message_bytes
}
fn default_max_name_bytes() -> usize {
    sluice_runtime::OutputCaps::default().name_bytes
}
fn default_max_schema_bytes() -> usize {
    sluice_runtime::OutputCaps::default().schema_bytes
}
fn default_max_state_bytes() -> usize {
    sluice_runtime::OutputCaps::default().state_bytes
}
fn default_max_batch_mb() -> usize {
    sluice_runtime::OutputCaps::default().batch_bytes >> 20
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            parallelism: None,
            memory_mb: default_memory_mb(),
            call_timeout: default_call_timeout(),
            queue_batches: default_queue(),
            retries: default_retries(),
            commit_every_rows: None,
            max_message_bytes: default_max_message_bytes(),
            max_name_bytes: default_max_name_bytes(),
            max_schema_bytes: default_max_schema_bytes(),
            max_state_bytes: default_max_state_bytes(),
            max_batch_mb: default_max_batch_mb(),
        }
    }
}

impl Exec {
    /// Tasks to run at once.
    pub fn parallelism(&self) -> usize {
        self.parallelism
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .max(1)
    }

    /// The sandbox limits these settings give.
    pub fn limits(&self) -> sluice_runtime::Limits {
        sluice_runtime::Limits {
            memory_bytes: (self.memory_mb.max(1) << 20) as usize,
            call_timeout: Duration::from_secs_f64(self.call_timeout.max(0.01)),
            timeout_setting: "exec.call_timeout",
            caps: sluice_runtime::OutputCaps {
                message_bytes: self.max_message_bytes.max(64),
                name_bytes: self.max_name_bytes.max(1),
                schema_bytes: self.max_schema_bytes.max(1),
                state_bytes: self.max_state_bytes.max(1),
                batch_bytes: self.max_batch_mb.max(1).saturating_mul(1 << 20),
            },
        }
    }
}

impl Job {
    /// Read and parse a job file, interpolating `${env:NAME}`.
    ///
    /// # Errors
    /// [`Error::Job`] naming the file, and the line or the path in it.
    pub fn load(path: &Path) -> Result<Job> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Job {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parse job text; `env` looks up variables (tests pass their own).
    ///
    /// # Errors
    /// As [`Job::load`].
    pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Job> {
        let file = path.display().to_string();
        let err = |message: String| Error::Job {
            file: file.clone(),
            message,
        };
        let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
            err(match e.location() {
                Some(l) => format!("line {}, column {}: {e}", l.line(), l.column()),
                None => e.to_string(),
            })
        })?;
        interpolate(&mut value, "", env).map_err(err)?;
        let mut job: Job = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            err(if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            })
        })?;
        job.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        job.file = path.to_path_buf();
        if job.name.is_none() {
            job.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        Ok(job)
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("job")
    }

    /// A grant path resolved against the job file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

fn interpolate(
    value: &mut Value,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<(), String> {
    match value {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .ok_or_else(|| format!("{at}: unclosed `${{` in {s:?}"))?;
                let inner = &rest[start + 2..start + end];
                match inner.split_once(':') {
                    // Left for the host to fill in request headers: the
                    // plugin never holds the value.
                    Some(("secret", name)) if !name.is_empty() => {
                        out.push_str(&rest[start..start + end + 1]);
                    }
                    Some(("env", name)) => {
                        let v = env(name).ok_or_else(|| {
                            format!("{at}: environment variable {name} is not set")
                        })?;
                        out.push_str(&v);
                    }
                    _ => {
                        return Err(format!(
                            "{at}: unknown interpolation `${{{inner}}}`: use ${{env:NAME}} or ${{secret:NAME}}"
                        ));
                    }
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
            // A value that is exactly one placeholder takes the variable's
            // YAML type, so `rows: ${env:ROWS}` is a number.
            *value = match serde_yaml::from_str::<Value>(&out) {
                Ok(typed @ (Value::Number(_) | Value::Bool(_))) if whole => typed,
                _ => Value::String(out),
            };
        }
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let path = if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                };
                interpolate(v, &path, env)?;
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate(v, &format!("{at}[{i}]"), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where a step's config sits in the job file, for messages.
pub fn step_path(kind: &str, index: Option<usize>) -> String {
    match index {
        Some(i) => format!("{kind}[{i}].config"),
        None => format!("{kind}.config"),
    }
}

/// Parsed `name@version` plugin reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A name from the plugin directories, with an optional version prefix.
    Named {
        /// Plugin name.
        name: String,
        /// A version requirement, read as Cargo reads one (`0.1` accepts `0.1.x`).
        version: Option<String>,
    },
    /// A `.wasm` file.
    File(PathBuf),
}

impl PluginRef {
    /// Parse the `plugin:` value of a step.
    pub fn parse(s: &str) -> PluginRef {
        if s.ends_with(".wasm") || s.contains('/') {
            return PluginRef::File(PathBuf::from(s));
        }
        match s.split_once('@') {
            Some((name, version)) => PluginRef::Named {
                name: name.into(),
                version: Some(version.into()),
            },
            None => PluginRef::Named {
                name: s.into(),
                version: None,
            },
        }
    }
}

/// `BTreeMap` of environment overrides, for tests.
pub type EnvMap = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job> {
        let env: EnvMap = [("DIR".to_string(), "/data".to_string())].into();
        Job::parse(text, Path::new("jobs/x.yaml"), &|k| env.get(k).cloned())
    }

    #[test]
    fn minimal_job_and_env() {
        let job = parse(
            "source: {plugin: file, grants: {blob: '${env:DIR}/in'}, config: {paths: ['*.csv']}}\nsink: {plugin: file@0.1, config: {path: out.csv}}\n",
        )
        .unwrap();
        assert_eq!(job.name(), "x");
        assert_eq!(
            job.source.grants.blob.as_ref().map(BlobLocation::url),
            Some("/data/in")
        );
        assert_eq!(job.base_dir, Path::new("jobs"));
        let env: EnvMap = [("N".to_string(), "12".to_string())].into();
        let typed = Job::parse(
            "source: {plugin: g, config: {rows: '${env:N}', name: 'x${env:N}'}}\nsink: {plugin: f}\n",
            Path::new("j.yaml"),
            &|k| env.get(k).cloned(),
        )
        .unwrap();
        assert_eq!(typed.source.config["rows"], 12);
        assert_eq!(typed.source.config["name"], "x12");
        assert_eq!(
            PluginRef::parse(&job.sink.plugin),
            PluginRef::Named {
                name: "file".into(),
                version: Some("0.1".into())
            }
        );
    }

    #[test]
    fn errors_name_file_and_path() {
        let e = parse("source: {plugin: file}\nsink: {plugin: file, grants: {network: x}}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jobs/x.yaml") && e.contains("sink.grants"),
            "{e}"
        );
        assert!(e.contains("network"), "{e}");
        let e = parse("source: {plugin: file}\n").unwrap_err().to_string();
        assert!(e.contains("sink"), "{e}");
        let e = parse("source: [\n").unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
        let e = parse("source: {plugin: '${env:NOPE}'}\nsink: {plugin: f}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("source.plugin") && e.contains("NOPE"), "{e}");
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    fn parse(text: &str) -> Result<Job> {
        Job::parse(text, Path::new("j.yaml"), &|_| Some("v".into()))
    }

    #[test]
    fn s3_grants_take_their_own_settings_and_refuse_typos() {
        let job = parse(
            "s3: {region: eu-west-1, endpoint: 'http://a'}\nsource: {plugin: file, grants: {blob: {url: 's3://b/raw/', endpoint: 'http://b'}}}\nsink: {plugin: f, grants: {blob: 's3://c/out/'}}\n",
        )
        .unwrap();
        let source = job.source.grants.blob.as_ref().unwrap();
        assert!(source.is_s3());
        let s3 = source.s3_settings(&job.s3);
        assert_eq!(s3.endpoint.as_deref(), Some("http://b"));
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        let sink = job.sink.grants.blob.as_ref().unwrap();
        assert_eq!(
            sink.s3_settings(&job.s3).endpoint.as_deref(),
            Some("http://a")
        );
        let err = parse(
            "source: {plugin: file, grants: {blob: {url: 's3://b/', endpiont: 'http://b'}}}\nsink: {plugin: f}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("blob"), "{err}");
    }

    #[test]
    fn secrets_stay_placeholders_for_the_host() {
        let job = parse(
            "secrets: {token: '${env:T}'}\nsource: {plugin: http, grants: {http: {hosts: [a.com]}, secrets: [token]}, config: {h: 'Bearer ${secret:token}'}}\nsink: {plugin: f}\n",
        )
        .unwrap();
        assert_eq!(job.source.config["h"], "Bearer ${secret:token}");
        assert_eq!(job.secrets["token"].0, "v");
        assert!(!format!("{job:?}").contains("SecretValue(\"v\")"));
        assert_eq!(job.source.grants.http.as_ref().unwrap().hosts, ["a.com"]);
    }
}
