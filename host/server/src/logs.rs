//! Where task logs end up: local files by default, or S3 on a fleet
//! (`SLUICE_LOG_URL=s3://bucket/prefix`), where a worker's disk goes with it.

use std::io::Read;
use std::path::Path;

use sluice_codec::store::ObjectStore;
use sluice_s3::{S3Settings, S3Store};

fn settings() -> S3Settings {
    S3Settings::from_env()
}

/// Uploads finished task logs under an S3 prefix.
#[derive(Debug, Clone)]
pub struct LogSink {
    url: String,
}

impl LogSink {
    /// A sink for `url` (`s3://bucket/prefix`).
    ///
    /// # Errors
    /// A URL that is not `s3://bucket[/prefix]`.
    pub fn new(url: &str) -> Result<LogSink, String> {
        sluice_s3::S3Url::parse(url).map_err(|e| format!("SLUICE_LOG_URL: {e}"))?;
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
        let store =
            S3Store::new(&format!("{}/", self.url), &settings()).map_err(|e| e.to_string())?;
        store.write(name, &data).map_err(|e| e.to_string())?;
        Ok(format!("{}/{name}", self.url))
    }
}

/// A log's text, from a local path or an `s3://` URL. Blocking.
///
/// # Errors
/// When it cannot be read.
pub fn read_log(location: &str) -> Result<String, String> {
    if !location.starts_with("s3://") {
        return std::fs::read_to_string(location).map_err(|e| e.to_string());
    }
    let (dir, name) = location
        .rsplit_once('/')
        .ok_or_else(|| format!("{location}: not an object URL"))?;
    let store = S3Store::new(&format!("{dir}/"), &settings()).map_err(|e| e.to_string())?;
    let mut text = String::new();
    store
        .open(name, 0)
        .map_err(|e| e.to_string())?
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
