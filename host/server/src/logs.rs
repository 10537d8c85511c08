//! Where task logs end up: local files by default, or an object store on a
//! fleet (`SLUICE_LOG_URL=s3://bucket/prefix` or `gs://bucket/prefix`),
//! where a worker's disk goes with it.

use std::io::Read;
use std::path::Path;

use sluice_codec::store::ObjectStore;
use sluice_gcs::{GcsSettings, GcsStore};
use sluice_s3::{S3Settings, S3Store};

/// The store under `dir` (`s3://…/` or `gs://…/`), reached with the
/// settings the environment gives (the AWS chain, `AWS_ENDPOINT_URL`;
/// Google's ADC, `STORAGE_EMULATOR_HOST`).
fn store(dir: &str) -> Result<Box<dyn ObjectStore>, String> {
    if dir.starts_with("gs://") {
        let store = GcsStore::new(dir, &GcsSettings::from_env()).map_err(|e| e.to_string())?;
        return Ok(Box::new(store));
    }
    let store = S3Store::new(dir, &S3Settings::from_env()).map_err(|e| e.to_string())?;
    Ok(Box::new(store))
}

/// Uploads finished task logs under an object-store prefix.
#[derive(Debug, Clone)]
pub struct LogSink {
    url: String,
}

impl LogSink {
    /// A sink for `url` (`s3://bucket/prefix` or `gs://bucket/prefix`).
    ///
    /// # Errors
    /// A URL that is neither.
    pub fn new(url: &str) -> Result<LogSink, String> {
        if url.starts_with("gs://") {
            sluice_gcs::GcsUrl::parse(url).map_err(|e| format!("SLUICE_LOG_URL: {e}"))?;
        } else {
            sluice_s3::S3Url::parse(url).map_err(|e| format!("SLUICE_LOG_URL: {e}"))?;
        }
        Ok(LogSink {
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// Upload `file` as `<prefix>/<name>`; returns its URL. Blocking.
    ///
    /// # Errors
    /// When the file cannot be read or the upload fails.
    pub fn upload(&self, file: &Path, name: &str) -> Result<String, String> {
        let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let store = store(&format!("{}/", self.url))?;
        store.write(name, &data).map_err(|e| e.to_string())?;
        Ok(format!("{}/{name}", self.url))
    }
}

/// A log's text, from a local path or an `s3://` or `gs://` URL. Blocking.
///
/// # Errors
/// When it cannot be read.
pub fn read_log(location: &str) -> Result<String, String> {
    if !location.starts_with("s3://") && !location.starts_with("gs://") {
        return std::fs::read_to_string(location).map_err(|e| e.to_string());
    }
    let (dir, name) = location
        .rsplit_once('/')
        .ok_or_else(|| format!("{location}: not an object URL"))?;
    let store = store(&format!("{dir}/"))?;
    let mut text = String::new();
    store
        .open(name, 0)
        .map_err(|e| e.to_string())?
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
