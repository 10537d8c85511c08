//! Opening the object store behind a `blob` grant: a local directory
//! (created for sinks) or an S3 prefix, checked before any data moves.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_runtime::{LocalStore, ObjectStore};
use sluice_s3::{S3Settings, S3Store};

use crate::error::{Error, Result};
use crate::job::{BlobLocation, Job};

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
