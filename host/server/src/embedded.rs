//! A workflow run in place: one process, the embedded store, the same
//! queue and the same semantics as on a fleet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_store::{AttemptRecord, AttemptStatus, Store};
use tokio::sync::watch;

use crate::execute::Executor;
use crate::launch::{Launch, start_workflow};
use crate::project::ProjectFiles;
use crate::worker::{Worker, WorkerConfig, worker_id};
use crate::{Error, Result};

/// Where and how to run a workflow in place.
#[derive(Debug, Clone)]
pub struct InPlace {
    /// The project directory (the workflow file's).
    pub dir: PathBuf,
    /// Tasks at once.
    pub slots: usize,
    /// Where task logs go.
    pub log_dir: Option<PathBuf>,
    /// Where they are uploaded when done (`SLUICE_LOG_URL`).
    pub log_sink: Option<crate::logs::LogSink>,
    /// Where scratch files go.
    pub work_dir: PathBuf,
    /// Decrypts the project's secrets.
    pub secret_key: Option<sluice_store::SecretKey>,
}

/// Start the workflow and run its tasks here until the attempt ends;
/// `shutdown` (Ctrl-C) stops early, giving running tasks back.
///
/// # Errors
/// A workflow that does not expand, a store error.
pub async fn run_in_place(
    store: &Store,
    executor: Arc<Executor>,
    launch: &Launch,
    place: &InPlace,
    shutdown: watch::Receiver<bool>,
) -> Result<(AttemptRecord, Option<AttemptStatus>)> {
    let files = ProjectFiles::Dir(place.dir.clone());
    let attempt = start_workflow(store, &files, None, launch)
        .await?
        .ok_or_else(|| Error::Project("the session exists already".into()))?;
    let status = if attempt.status.is_done() {
        Some(attempt.status)
    } else {
        let worker = Worker::new(
            store.clone(),
            executor,
            WorkerConfig {
                id: worker_id(),
                slots: place.slots,
                lease_ttl: Duration::from_secs(30),
                poll: Duration::from_millis(500),
                grace: Duration::from_secs(30),
                max_lease_expiries: 3,
                only_attempt: Some(attempt.id),
                local_root: Some(place.dir.clone()),
                work_dir: place.work_dir.clone(),
                log_dir: place.log_dir.clone(),
                log_sink: place.log_sink.clone(),
                secret_key: place.secret_key.clone(),
                roles: "in-place".into(),
            },
        );
        worker.run(shutdown).await?
    };
    Ok((store.attempt(attempt.id).await?, status))
}
