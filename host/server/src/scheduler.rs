//! The scheduler: starts a session for each schedule time that came.
//!
//! Any number of servers may run the scheduler role; one leads at a time
//! (a PostgreSQL advisory lock), and a session is unique per workflow and
//! time in the database, so even two leaders could not fire a time twice.

use std::time::Duration;

use sluice_store::{ScheduleRecord, Store};
use sluice_workflow::{Schedule, ScheduleSpec};
use tokio::sync::watch;

use crate::Result;
use crate::launch::{Launch, SessionTime, start_workflow};
use crate::project::ProjectFiles;

/// Starts scheduled sessions while it leads.
pub struct Scheduler {
    store: Store,
    tick: Duration,
}

impl Scheduler {
    /// A scheduler checking every `tick`.
    pub fn new(store: Store, tick: Duration) -> Scheduler {
        Scheduler { store, tick }
    }

    /// Lead when possible and fire due schedules until `shutdown` is set.
    ///
    /// # Errors
    /// Never for a database outage (it waits and retries); only on bugs.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let lead = match self.store.try_lead().await {
                Ok(lead) => lead,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler: store unreachable, retrying");
                    None
                }
            };
            if let Some(mut lead) = lead {
                tracing::info!("scheduler: leading");
                while lead.still_held().await {
                    if let Err(e) = self.tick_once(now_ms()).await {
                        tracing::warn!(error = %e, "scheduler: tick failed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.tick) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                }
                tracing::warn!("scheduler: lost the lead (database connection lost)");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    /// Fire every schedule due at `now`; returns how many sessions started.
    ///
    /// # Errors
    /// On a store error.
    pub async fn tick_once(&self, now: i64) -> Result<usize> {
        let mut started = 0;
        for record in self.store.schedules(Some(now)).await? {
            match self.fire(&record, now).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    project = %record.project,
                    workflow = %record.workflow,
                    error = %e,
                    "scheduler: could not start a session"
                ),
            }
        }
        Ok(started)
    }

    async fn fire(&self, record: &ScheduleRecord, now: i64) -> Result<bool> {
        let spec: ScheduleSpec = serde_json::from_str(&record.spec)
            .map_err(|e| crate::Error::Project(format!("stored schedule: {e}")))?;
        let schedule = Schedule::parse(&spec).map_err(crate::Error::Project)?;
        let fired = record.next_run_time;
        let next = schedule.next_after(fired).unwrap_or(i64::MAX);
        if schedule.skip_on_overtime
            && self
                .store
                .has_running_attempt(record.project_id, &record.workflow)
                .await?
        {
            tracing::info!(workflow = %record.workflow, time = fired, "scheduler: skipped (previous session still running)");
            let next = schedule.next_after(now.max(fired)).unwrap_or(i64::MAX);
            self.store
                .advance_schedule(record.id, fired, next, None)
                .await?;
            return Ok(false);
        }
        let (revision, _) = self.store.latest_revision(&record.project).await?;
        let files = ProjectFiles::Files(self.store.revision_files(revision).await?);
        let launch = Launch {
            project: record.project.clone(),
            workflow: record.workflow.clone(),
            session: SessionTime::At(fired),
            params: Default::default(),
            resume_from: None,
            only_new_session: true,
            full_refresh: false,
        };
        let attempt = start_workflow(&self.store, &files, Some(revision), &launch).await?;
        // Only the caller that still sees `fired` as next moves it on.
        self.store
            .advance_schedule(record.id, fired, next, Some(fired))
            .await?;
        if let Some(a) = &attempt {
            tracing::info!(workflow = %record.workflow, attempt = a.id, time = fired, "scheduler: session started");
        }
        Ok(attempt.is_some())
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
