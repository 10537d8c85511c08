//! Opening the object store behind a `blob` grant: a local directory
//! (created for sinks), an S3 prefix or a GCS prefix, checked before any
//! data moves.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_gcs::{GcsCredentials, GcsSettings, GcsStore};
use sluice_runtime::{LocalStore, ObjectStore};
use sluice_s3::{S3Settings, S3Store};

use crate::error::{Error, Result};
use crate::job::{BigQueryGrantConfig, BlobLocation, GcsConfig, Job};

/// The store `location` names for the plugin at `at` (`source`, `sink`).
/// A sink's local directory is created; an S3 prefix is probed with one
/// list, so a missing bucket or refused credentials fail here, naming
/// the grant, instead of mid-transfer.
///
/// # Errors
/// A job error naming `{at}.grants.blob`.
pub(crate) fn open(
    job: &Job,
    at: &str,
    location: &BlobLocation,
    writable: bool,
) -> Result<Arc<dyn ObjectStore>> {
    let fail = |message: String| Error::Job {
        file: job.file.display().to_string(),
        message: format!("{at}.grants.blob: {message}"),
    };
    let foreign = location.foreign_keys();
    if !foreign.is_empty() {
        return Err(fail(format!(
            "`{}` does not apply to {}",
            foreign.join("`, `"),
            location.url()
        )));
    }
    if location.is_gcs() {
        let settings = gcs_settings(job, &location.gcs_settings(&job.gcs)).map_err(fail)?;
        let store = GcsStore::new(location.url(), &settings).map_err(|e| fail(e.message))?;
        store.probe().map_err(|e| fail(e.message))?;
        return Ok(Arc::new(store));
    }
    if location.is_s3() {
        let s3 = location.s3_settings(&job.s3);
        let settings = S3Settings {
            endpoint: s3.endpoint,
            region: s3.region,
            path_style: s3.path_style,
            profile: s3.profile,
        };
        let store = S3Store::new(location.url(), &settings).map_err(|e| fail(e.message))?;
        store.probe().map_err(|e| fail(e.message))?;
        return Ok(Arc::new(store));
    }
    let root = local_root(job, at, location, writable)?;
    let store = LocalStore::open(&root).map_err(|e| fail(e.message))?;
    Ok(Arc::new(store))
}

/// The name in `text` when it is exactly `${secret:NAME}`.
fn secret_name(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix("${secret:")
        .and_then(|rest| rest.strip_suffix('}'))
}

/// The job's secret `name` (on a fleet worker, the project's).
fn secret(job: &Job, name: &str) -> std::result::Result<String, String> {
    job.secrets
        .get(name)
        .map(|s| s.0.clone())
        .ok_or_else(|| format!("no secret named `{name}` under `secrets:`"))
}

/// `text`, or the secret it names when it is exactly `${secret:NAME}`: a
/// database URL kept as a secret (a project secret on a fleet) reaches the
/// host and never the job file.
///
/// # Errors
/// A message naming a secret the job does not have.
pub(crate) fn secret_or_text(job: &Job, text: &str) -> std::result::Result<String, String> {
    match secret_name(text) {
        Some(name) => secret(job, name),
        None => Ok(text.to_string()),
    }
}

/// The credentials a `credentials:` value names: `application_default`,
/// `anonymous`, a credentials file's JSON, or `${secret:NAME}` holding it.
fn credentials(job: &Job, text: &str) -> std::result::Result<GcsCredentials, String> {
    Ok(match text.trim() {
        "application_default" => GcsCredentials::ApplicationDefault,
        "anonymous" => GcsCredentials::Anonymous,
        json if json.starts_with('{') => GcsCredentials::Json(json.to_string()),
        other => {
            let name = secret_name(other).ok_or_else(|| {
                "credentials: use application_default, anonymous, ${secret:NAME} \
                 or ${env:NAME} holding a credentials file's JSON"
                    .to_string()
            })?;
            GcsCredentials::Json(secret(job, name).map_err(|m| format!("credentials: {m}"))?)
        }
    })
}

/// The BigQuery handle a `bigquery` grant names. Its credentials are the
/// grant's, else the job's `gcs.credentials` (one GCP credential serves
/// both); `BIGQUERY_EMULATOR_HOST` names an emulator reached without them.
///
/// # Errors
/// A job error naming `{at}.grants.bigquery`.
pub(crate) fn bigquery(
    job: &Job,
    at: &str,
    config: &BigQueryGrantConfig,
) -> Result<sluice_bigquery::BigQuery> {
    let fail = |message: String| Error::Job {
        file: job.file.display().to_string(),
        message: format!("{at}.grants.bigquery: {message}"),
    };
    if config.datasets.is_empty() {
        return Err(fail(
            "name the datasets the plugin may use: `datasets: [...]`".into(),
        ));
    }
    // As with GCS, an emulator named in the environment is reached without
    // credentials when the job names none.
    let emulator = sluice_gcs::emulator_endpoint("BIGQUERY_EMULATOR_HOST");
    let endpoint = config.endpoint.clone().or(emulator.clone());
    let credentials = match config.credentials.as_ref().or(job.gcs.credentials.as_ref()) {
        Some(text) => credentials(job, text).map_err(fail)?,
        None if endpoint.is_some() && endpoint == emulator => GcsCredentials::Anonymous,
        None => GcsSettings::from_env().credentials,
    };
    let settings = GcsSettings {
        endpoint,
        credentials,
    };
    sluice_bigquery::BigQuery::new(sluice_bigquery::BigQueryGrant {
        project: config.project.clone(),
        datasets: config.datasets.clone(),
        location: config.location.clone(),
        settings,
    })
    .map_err(|e| fail(e.message))
}

/// The GCS settings of a grant, its credentials looked up: a
/// `${secret:NAME}` comes from the job's `secrets:` (on a fleet worker, the
/// project's secrets), so a key is never written in the job.
///
/// # Errors
/// A message naming the missing secret or the unknown word.
pub(crate) fn gcs_settings(
    job: &Job,
    config: &GcsConfig,
) -> std::result::Result<GcsSettings, String> {
    // `STORAGE_EMULATOR_HOST`, as Google's libraries read it, fills in
    // what the job leaves out: the emulator, reached without credentials.
    let from_env = GcsSettings::from_env();
    let credentials = match &config.credentials {
        Some(text) => credentials(job, text)?,
        None => from_env.credentials,
    };
    Ok(GcsSettings {
        endpoint: config.endpoint.clone().or(from_env.endpoint),
        credentials,
    })
}

/// The canonical directory of a local grant (created when `writable`).
///
/// # Errors
/// A job error when it is missing or cannot be created.
fn local_root(job: &Job, at: &str, location: &BlobLocation, writable: bool) -> Result<PathBuf> {
    let fail = |message: String| Error::Job {
        file: job.file.display().to_string(),
        message: format!("{at}.grants.blob: {message}"),
    };
    let root = job.resolve(std::path::Path::new(location.url()));
    if writable {
        std::fs::create_dir_all(&root)
            .map_err(|e| fail(format!("cannot create {}: {e}", root.display())))?;
    }
    root.canonicalize()
        .map_err(|e| fail(format!("{}: {e}", root.display())))
}
