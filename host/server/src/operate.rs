//! What an operator does to pushed workflows (start, retry, backfill,
//! skip, enable): one implementation for the CLI and the REST API.

use sluice_store::{AttemptRecord, ScheduleRecord, Store};
use sluice_workflow::{Params, Schedule, ScheduleSpec};

use crate::project::ProjectFiles;
use crate::{Error, Launch, Result, SessionTime, now_ms, start_workflow};

/// Start a workflow of a project's latest revision now.
///
/// # Errors
/// An unknown project or workflow, a bad session time, a store error.
pub async fn start_latest(
    store: &Store,
    project: &str,
    workflow: &str,
    session: &str,
    params: Params,
    full_refresh: bool,
) -> Result<AttemptRecord> {
    let (revision, _) = store.latest_revision(project).await?;
    let files = ProjectFiles::Files(store.revision_files(revision).await?);
    let launch = Launch {
        project: project.into(),
        workflow: workflow.into(),
        session: SessionTime::parse(session).map_err(Error::Invalid)?,
        params,
        resume_from: None,
        only_new_session: false,
        full_refresh,
    };
    start_workflow(store, &files, Some(revision), &launch)
        .await?
        .ok_or_else(|| Error::Invalid(format!("{project}/{workflow} was not started")))
}

/// Retry a finished attempt as a new attempt of the same session: from
/// scratch, or (`resume`) running only what failed or did not run.
///
/// # Errors
/// A running attempt, one that ran a file in place, a store error.
pub async fn retry_attempt(
    store: &Store,
    attempt: i64,
    resume: bool,
    full_refresh: bool,
) -> Result<AttemptRecord> {
    let old = store.attempt(attempt).await?;
    if !old.status.is_done() {
        return Err(Error::Invalid(format!(
            "attempt {attempt} is still running; kill it first"
        )));
    }
    let Some(revision) = old.revision_id else {
        return Err(Error::Invalid(format!(
            "attempt {attempt} ran a workflow file in place; run `sluice workflow run` again"
        )));
    };
    let files = ProjectFiles::Files(store.revision_files(revision).await?);
    let launch = Launch {
        project: old.project.clone(),
        workflow: old.workflow.clone(),
        session: SessionTime::At(old.session_time),
        params: {
            // A retry refreshes in full only when asked to again.
            let mut params: Params = serde_json::from_str(&old.params).unwrap_or_default();
            params.remove("full_refresh");
            params
        },
        resume_from: resume.then_some(attempt),
        only_new_session: false,
        full_refresh,
    };
    start_workflow(store, &files, old.revision_id, &launch)
        .await?
        .ok_or_else(|| Error::Invalid(format!("attempt {attempt} was not retried")))
}

/// The schedule of a workflow, with its parsed form.
///
/// # Errors
/// [`sluice_store::Error::NotFound`] when it has none.
pub async fn schedule_of(
    store: &Store,
    project: &str,
    workflow: &str,
) -> Result<(ScheduleRecord, Schedule, ScheduleSpec)> {
    let record = store
        .schedules(None)
        .await?
        .into_iter()
        .find(|s| s.project == project && s.workflow == workflow)
        .ok_or_else(|| {
            sluice_store::Error::NotFound(format!("schedule of {project}/{workflow}"))
        })?;
    let spec: ScheduleSpec = serde_json::from_str(&record.spec)
        .map_err(|e| Error::Project(format!("stored schedule of {project}/{workflow}: {e}")))?;
    let schedule = Schedule::parse(&spec).map_err(Error::Project)?;
    Ok((record, schedule, spec))
}

/// Turn a schedule on (from the next time after now) or off. Returns the
/// next run time when it is on.
///
/// # Errors
/// No such schedule, a store error.
pub async fn set_schedule_enabled(
    store: &Store,
    project: &str,
    workflow: &str,
    enabled: bool,
) -> Result<Option<i64>> {
    let (_, schedule, _) = schedule_of(store, project, workflow).await?;
    let next = enabled.then(|| schedule.next_after(now_ms())).flatten();
    store
        .set_schedule_enabled(project, workflow, enabled, next)
        .await?;
    Ok(next)
}

/// What a backfill did.
#[derive(Debug, Clone, Default)]
pub struct Backfill {
    /// Attempts started: (attempt id, session time).
    pub started: Vec<(i64, i64)>,
    /// Session times that had run already (left alone).
    pub existed: usize,
}

/// Start the sessions a schedule would have fired in `[from, to)` (times as
/// [`SessionTime::parse`] reads them, days in the schedule's zone), skipping
/// those that ran.
///
/// # Errors
/// No such schedule, a bad time, a store error.
pub async fn backfill(
    store: &Store,
    project: &str,
    workflow: &str,
    from: &str,
    to: &str,
) -> Result<Backfill> {
    let (_, schedule, spec) = schedule_of(store, project, workflow).await?;
    let resolve = |t: &str| {
        SessionTime::parse(t)
            .map(|t| t.resolve(&spec.timezone))
            .map_err(Error::Invalid)
    };
    let (from, to) = (resolve(from)?, resolve(to)?);
    let (revision, _) = store.latest_revision(project).await?;
    let files = ProjectFiles::Files(store.revision_files(revision).await?);
    let mut done = Backfill::default();
    let mut next = schedule.next_after(from - 1);
    while let Some(time) = next.filter(|t| *t < to) {
        let launch = Launch {
            project: project.into(),
            workflow: workflow.into(),
            session: SessionTime::At(time),
            params: Params::new(),
            resume_from: None,
            only_new_session: true,
            full_refresh: false,
        };
        match start_workflow(store, &files, Some(revision), &launch).await? {
            Some(a) => done.started.push((a.id, time)),
            None => done.existed += 1,
        }
        next = schedule.next_after(time);
    }
    Ok(done)
}

/// Skip a schedule's runs before `until`: the next run is the first time
/// at or after it. Returns that time.
///
/// # Errors
/// No such schedule, a bad time, a store error.
pub async fn skip_schedule(
    store: &Store,
    project: &str,
    workflow: &str,
    until: &str,
) -> Result<i64> {
    let (record, schedule, spec) = schedule_of(store, project, workflow).await?;
    let until = SessionTime::parse(until)
        .map_err(Error::Invalid)?
        .resolve(&spec.timezone);
    let next = schedule.next_after(until - 1).unwrap_or(i64::MAX);
    store
        .advance_schedule(record.id, record.next_run_time, next, None)
        .await?;
    Ok(next)
}
