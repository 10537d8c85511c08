//! The worker loop: lease ready tasks, run them, report, keep leases alive.
//!
//! One loop per process runs up to `slots` tasks at once. Outcomes are
//! reported in batches (one transaction for many tasks); heartbeats extend
//! every lease this worker holds in one statement. Idle workers sleep on
//! PostgreSQL NOTIFY (or, in one process, a local signal); polling is only
//! the fallback. On shutdown the loop stops leasing, asks running tasks to
//! checkpoint, and gives back whatever has not finished within the grace.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_store::{AttemptStatus, LeasedTask, Outcome, READY_CHANNEL, SecretKey, Store};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::Result;
use crate::execute::{Executor, Stop, TaskContext, TaskLog};
use crate::project::materialize;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's id (owner of its leases).
    pub id: String,
    /// Tasks at once.
    pub slots: usize,
    /// How long a lease lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// Longest sleep when idle (NOTIFY usually wakes it first).
    pub poll: Duration,
    /// On shutdown, how long running tasks get to checkpoint.
    pub grace: Duration,
    /// A task whose lease expires this many times fails.
    pub max_lease_expiries: i64,
    /// Only this attempt's tasks (a workflow run in place); the loop ends
    /// when the attempt does.
    pub only_attempt: Option<i64>,
    /// The project directory of attempts without a revision.
    pub local_root: Option<PathBuf>,
    /// Where pushed revisions are unpacked.
    pub work_dir: PathBuf,
    /// Where task logs are written (None: no log files).
    pub log_dir: Option<PathBuf>,
    /// Where finished task logs are uploaded (`SLUICE_LOG_URL`), if anywhere.
    pub log_sink: Option<crate::logs::LogSink>,
    /// Decrypts project secrets.
    pub secret_key: Option<SecretKey>,
    /// Roles to record in the workers table.
    pub roles: String,
}

/// A process-unique worker id: host, pid and a random tail.
pub fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{:04x}", std::process::id(), nanos & 0xffff)
}

/// Per-attempt facts a task needs, cached.
#[derive(Clone)]
struct AttemptInfo {
    root: PathBuf,
    project: String,
    workflow: String,
    session: i64,
    secrets: Vec<(String, String)>,
}

/// A worker: the loop and what it shares with its tasks.
pub struct Worker {
    store: Store,
    executor: Arc<Executor>,
    config: WorkerConfig,
    running: Mutex<HashMap<i64, watch::Sender<Stop>>>,
    attempts: Mutex<HashMap<i64, AttemptInfo>>,
}

impl Worker {
    /// A worker over `store`, running tasks with `executor`.
    pub fn new(store: Store, executor: Arc<Executor>, config: WorkerConfig) -> Arc<Worker> {
        Arc::new(Worker {
            store,
            executor,
            config,
            running: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
        })
    }

    /// Run until `shutdown` turns true (or, with `only_attempt`, until that
    /// attempt ends). Returns how the attempt ended in that case.
    ///
    /// # Errors
    /// Only on a bug; outages are waited out.
    pub async fn run(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Option<AttemptStatus>> {
        let cfg = &self.config;
        let ttl = cfg.lease_ttl.as_millis() as i64;
        let slots = Arc::new(Semaphore::new(cfg.slots.max(1)));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<(i64, Outcome)>();
        let (finished_tx, mut finished_rx) = watch::channel(None::<AttemptStatus>);
        let signal = self.store.ready_signal();
        let _ = self
            .store
            .worker_alive(&cfg.id, &host(), &cfg.roles, false)
            .await;
        let reporter = tokio::spawn(self.clone().report(done_rx, finished_tx));
        let beats = tokio::spawn(self.clone().heartbeats(shutdown.clone()));
        let listener = tokio::spawn(listen(self.store.clone(), signal.clone(), shutdown.clone()));
        tracing::info!(worker = %cfg.id, slots = cfg.slots, "worker started");
        let mut ended = None;
        loop {
            if *shutdown.borrow() || finished_rx.borrow().is_some() {
                break;
            }
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore open"),
                _ = shutdown.changed() => continue,
                _ = finished_rx.changed() => continue,
            };
            // Let tasks that are finishing give their slots back, so one
            // lease takes many tasks instead of one each.
            tokio::task::yield_now().await;
            let mut permits = vec![first];
            while permits.len() < 64 {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let tasks = match self
                .store
                .lease(&cfg.id, permits.len() as i64, ttl, cfg.only_attempt)
                .await
            {
                Ok(tasks) => tasks,
                Err(e) => {
                    tracing::warn!(error = %e, "worker: cannot lease; retrying");
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            };
            if tasks.is_empty() {
                drop(permits);
                let idle = tokio::select! {
                    _ = &mut notified => false,
                    _ = tokio::time::sleep(cfg.poll) => true,
                    _ = shutdown.changed() => false,
                    _ = finished_rx.changed() => false,
                };
                // An attempt can end without a task of ours finishing
                // (killed elsewhere, nothing left to run): look now and then.
                if let (true, Some(attempt)) = (idle, cfg.only_attempt)
                    && let Ok(record) = self.store.attempt(attempt).await
                    && record.status.is_done()
                    && self.running.lock().expect("running lock").is_empty()
                {
                    ended = Some(record.status);
                    break;
                }
                continue;
            }
            for task in tasks {
                let permit = permits.pop().expect("one permit per leased task");
                let (stop_tx, stop_rx) = watch::channel(Stop::Run);
                self.running
                    .lock()
                    .expect("running lock")
                    .insert(task.id, stop_tx);
                let worker = self.clone();
                let done = done_tx.clone();
                self.executor.metrics().task_started(&task.kind);
                tokio::spawn(async move {
                    let outcome = worker.run_task(&task, stop_rx).await;
                    worker.executor.metrics().task_ended(&task.kind, &outcome);
                    worker
                        .running
                        .lock()
                        .expect("running lock")
                        .remove(&task.id);
                    let _ = done.send((task.id, outcome));
                    drop(permit);
                });
            }
        }
        let status = *finished_rx.borrow();
        if *shutdown.borrow() {
            self.drain(&done_tx).await;
        }
        drop(done_tx);
        let _ = reporter.await;
        beats.abort();
        listener.abort();
        self.executor.flush_metrics().await;
        let _ = self
            .store
            .worker_alive(&cfg.id, &host(), &cfg.roles, true)
            .await;
        tracing::info!(worker = %cfg.id, "worker stopped");
        Ok(status.or(ended).or(*finished_rx.borrow()))
    }

    /// Shutdown: ask every running task to checkpoint, wait for the grace,
    /// and give back what is still running.
    async fn drain(&self, done: &mpsc::UnboundedSender<(i64, Outcome)>) {
        let ids: Vec<i64> = {
            let running = self.running.lock().expect("running lock");
            for stop in running.values() {
                let _ = stop.send(Stop::Release);
            }
            running.keys().copied().collect()
        };
        if ids.is_empty() {
            return;
        }
        tracing::info!(tasks = ids.len(), grace = ?self.config.grace, "worker: shutting down, checkpointing running tasks");
        let deadline = Instant::now() + self.config.grace;
        while Instant::now() < deadline && !self.running.lock().expect("running lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left: Vec<i64> = self
            .running
            .lock()
            .expect("running lock")
            .keys()
            .copied()
            .collect();
        for id in left {
            tracing::warn!(
                task = id,
                "worker: grace over; giving the task back unfinished"
            );
            let _ = done.send((id, Outcome::Released));
        }
    }

    async fn run_task(&self, task: &LeasedTask, stop: watch::Receiver<Stop>) -> Outcome {
        let info = match self.attempt_info(task.attempt_id).await {
            Ok(info) => info,
            Err(e) => {
                return Outcome::Failed {
                    error: e.to_string(),
                    retryable: true,
                };
            }
        };
        let log_path = self.config.log_dir.as_ref().map(|dir| {
            dir.join(task.attempt_id.to_string())
                .join(format!("{}.{}.log", task.id, task.lease))
        });
        let log = TaskLog::open(
            log_path.clone(),
            info.secrets.iter().map(|(_, v)| v.clone()).collect(),
        );
        if let Some(path) = &log_path {
            let _ = self
                .store
                .add_task_log(
                    task.id,
                    task.lease,
                    &path.display().to_string(),
                    &self.config.id,
                )
                .await;
        }
        // Every log line of the task carries where it belongs.
        let span = tracing::info_span!("task", project = %info.project, workflow = %info.workflow,
            session = info.session, attempt = task.attempt_id, task = %task.name, id = task.id);
        let ctx = TaskContext {
            root: info.root,
            project: info.project,
            secrets: info.secrets,
            log,
            worker: self.config.id.clone(),
        };
        let outcome =
            tracing::Instrument::instrument(self.executor.run(task, &ctx, stop), span).await;
        if let (Some(sink), Some(path)) = (self.config.log_sink.clone(), log_path) {
            // The log leaves with the task: a worker's disk may be gone tomorrow.
            let name = format!("{}/{}.{}.log", task.attempt_id, task.id, task.lease);
            drop(ctx);
            let local = path.clone();
            match tokio::task::spawn_blocking(move || sink.upload(&local, &name)).await {
                Ok(Ok(url)) => {
                    if self
                        .store
                        .add_task_log(task.id, task.lease, &url, &self.config.id)
                        .await
                        .is_ok()
                    {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(task = task.id, error = %e, "cannot upload the task log; it stays on this worker")
                }
                Err(e) => tracing::warn!(task = task.id, error = %e, "log upload panicked"),
            }
        }
        outcome
    }

    async fn attempt_info(&self, attempt: i64) -> Result<AttemptInfo> {
        if let Some(info) = self.attempts.lock().expect("attempts lock").get(&attempt) {
            return Ok(info.clone());
        }
        let record = self.store.attempt(attempt).await?;
        let root = match (record.revision_id, &self.config.local_root) {
            (Some(rev), _) => {
                let root = self.config.work_dir.join("revisions").join(rev.to_string());
                if !root.join(".complete").exists() {
                    let files = self.store.revision_files(rev).await?;
                    let r = root.clone();
                    tokio::task::spawn_blocking(move || materialize(&r, &files))
                        .await
                        .map_err(|e| crate::Error::Project(e.to_string()))?
                        .map_err(|e| crate::Error::Project(format!("{}: {e}", root.display())))?;
                }
                root
            }
            (None, Some(dir)) => dir.clone(),
            (None, None) => {
                return Err(crate::Error::Project(format!(
                    "attempt {attempt} runs a workflow file in place on another machine"
                )));
            }
        };
        let secrets = match &self.config.secret_key {
            Some(key) => self.store.secrets(key, &record.project).await?,
            None => Vec::new(),
        };
        let info = AttemptInfo {
            root,
            project: record.project,
            workflow: record.workflow,
            session: record.session_id,
            secrets,
        };
        self.attempts
            .lock()
            .expect("attempts lock")
            .insert(attempt, info.clone());
        Ok(info)
    }

    /// Report outcomes in batches; a store outage is retried, never dropped.
    async fn report(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<(i64, Outcome)>,
        finished: watch::Sender<Option<AttemptStatus>>,
    ) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 1000 {
                match rx.try_recv() {
                    Ok(o) => batch.push(o),
                    Err(_) => break,
                }
            }
            let mut wait = Duration::from_millis(100);
            loop {
                match self.store.finish(&self.config.id, &batch).await {
                    Ok(report) => {
                        for id in &report.lost {
                            tracing::warn!(
                                task = id,
                                "worker: lease was lost; outcome dropped (another worker runs it)"
                            );
                        }
                        for (attempt, status) in &report.attempts_finished {
                            tracing::info!(attempt, status = status.as_str(), "attempt finished");
                            if Some(*attempt) == self.config.only_attempt {
                                let _ = finished.send(Some(*status));
                            }
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, tasks = batch.len(), "worker: cannot report outcomes; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }

    /// Extend leases, stop killed tasks, reclaim expired leases, say alive.
    async fn heartbeats(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let cfg = &self.config;
        let ttl = cfg.lease_ttl.as_millis() as i64;
        let every = (cfg.lease_ttl / 3).max(Duration::from_millis(100));
        let mut beat = 0u64;
        loop {
            match self.store.heartbeat(&cfg.id, ttl).await {
                Ok(killed) => {
                    let running = self.running.lock().expect("running lock");
                    for id in killed {
                        if let Some(stop) = running.get(&id) {
                            let _ = stop.send(Stop::Cancel);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "worker: heartbeat failed"),
            }
            if beat.is_multiple_of(2) {
                match self.store.reclaim_expired(cfg.max_lease_expiries).await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::warn!(tasks = ?ids, "reclaimed tasks whose worker stopped heartbeating")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "worker: cannot reclaim expired leases"),
                }
                let stopping = *shutdown.borrow();
                let _ = self
                    .store
                    .worker_alive(&cfg.id, &host(), &cfg.roles, stopping)
                    .await;
            }
            // Off the lease and report paths: what a worker counted reaches
            // /metrics within a heartbeat, long transfers' call times too.
            self.executor.flush_metrics().await;
            beat += 1;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

fn host() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
}

/// Wake idle workers in this process when another process makes tasks
/// ready (PostgreSQL NOTIFY). SQLite has no other processes to hear.
async fn listen(store: Store, signal: Arc<tokio::sync::Notify>, shutdown: watch::Receiver<bool>) {
    if store.dialect() != sluice_store::Dialect::Postgres {
        return;
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut listener = match sqlx::postgres::PgListener::connect(store.url()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "listener: cannot connect; polling meanwhile");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(READY_CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(_) => signal.notify_waiters(),
                Err(e) => {
                    tracing::debug!(error = %e, "listener: connection lost");
                    // Tasks may have become ready while we were deaf.
                    signal.notify_waiters();
                    break;
                }
            }
        }
    }
}
