//! Start a workflow: expand it for a session and put its tasks in the queue.

use std::collections::BTreeMap;

use serde_json::json;
use sluice_store::{AttemptRecord, NewAttempt, Store};
use sluice_workflow::{Params, Schedule, expand, session_params};

use crate::project::ProjectFiles;
use crate::{Error, Result};

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Project name.
    pub project: String,
    /// Workflow name.
    pub workflow: String,
    /// The session's time.
    pub session: SessionTime,
    /// Parameters that override the workflow's.
    pub params: Params,
    /// Retry a failed attempt, skipping what succeeded in it.
    pub resume_from: Option<i64>,
    /// Do nothing if the session exists (the scheduler's and backfill's case).
    pub only_new_session: bool,
    /// Every transfer of the attempt ignores its saved state and reads
    /// everything again (`sluice start --full-refresh`); the tasks see it
    /// as `${full_refresh}`.
    pub full_refresh: bool,
}

/// A session time as a user gives it.
#[derive(Debug, Clone, Copy)]
pub enum SessionTime {
    /// An instant, ms since the epoch.
    At(i64),
    /// Midnight of a day in the workflow's time zone.
    Day(chrono::NaiveDate),
}

impl SessionTime {
    /// Parse `now`, an RFC 3339 time, or a `YYYY-MM-DD` day.
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(text: &str) -> std::result::Result<SessionTime, String> {
        if text == "now" {
            let now = crate::scheduler::now_ms();
            return Ok(SessionTime::At(now - now % 1000));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(SessionTime::At(t.timestamp_millis()));
        }
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(SessionTime::Day)
            .map_err(|_| format!("{text:?}: expected now, YYYY-MM-DD or an RFC 3339 time"))
    }

    /// The instant, resolving a day in `tz`.
    pub fn resolve(self, tz: &str) -> i64 {
        match self {
            SessionTime::At(ms) => ms,
            SessionTime::Day(day) => {
                let zone: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Tz::UTC);
                let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
                chrono::TimeZone::from_local_datetime(&zone, &midnight)
                    .earliest()
                    .map(|t| t.timestamp_millis())
                    .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
            }
        }
    }
}

/// Expand and enqueue a workflow of a project whose files are `files`
/// (`revision`: the pushed revision they are, if any).
///
/// # Errors
/// An unknown workflow, a workflow that does not expand, a store error.
pub async fn start_workflow(
    store: &Store,
    files: &ProjectFiles,
    revision: Option<i64>,
    launch: &Launch,
) -> Result<Option<AttemptRecord>> {
    let (path, mut workflow) = files.workflow(&launch.workflow).map_err(|e| match e {
        Error::Project(_) => Error::Project(format!(
            "project {} has no workflow {}",
            launch.project, launch.workflow
        )),
        other => other,
    })?;
    let project_id = store.ensure_project(&launch.project).await?;
    let session_time = launch.session.resolve(workflow.timezone());
    let last = match workflow
        .schedule
        .as_ref()
        .and_then(|s| Schedule::parse(s).ok())
    {
        Some(schedule) => schedule.previous_before(session_time),
        None => {
            store
                .last_session_time(project_id, &launch.workflow, session_time)
                .await?
        }
    };
    let mut params = session_params(session_time, last, workflow.timezone());
    params.insert("project".into(), json!(launch.project));
    for (k, v) in &launch.params {
        workflow.params.insert(k.clone(), v.clone());
    }
    // `--full-refresh`, or `-p full_refresh=true`: one value everywhere.
    let full_refresh = launch.full_refresh
        || launch
            .params
            .get("full_refresh")
            .is_some_and(|v| v == &json!(true) || v == &json!("true"));
    params.insert("full_refresh".into(), json!(full_refresh));
    workflow
        .params
        .insert("full_refresh".into(), json!(full_refresh));
    let expansion = expand(&workflow, &path, params, &|p| files.read(p))?;
    let params_text = serde_json::to_string(&expansion.params).unwrap_or_else(|_| "{}".into());
    Ok(store
        .start_attempt(&NewAttempt {
            project_id,
            workflow: &launch.workflow,
            session_time,
            revision_id: revision,
            params: &params_text,
            plan: &expansion.plan,
            only_new_session: launch.only_new_session,
            resume_from: launch.resume_from,
            max_running: workflow.max_running.map(i64::from),
        })
        .await?)
}

/// Store a new revision of a project and bring its schedules in line with
/// it: new schedules start from `now`, changed ones restart, removed ones go.
///
/// # Errors
/// A workflow that does not parse (nothing is stored then), a taken name.
pub async fn push_project(
    store: &Store,
    project: &str,
    revision: &str,
    files: BTreeMap<String, String>,
    now: i64,
) -> Result<(i64, Vec<String>)> {
    let project_files = ProjectFiles::Files(files);
    let workflows = project_files.workflows()?;
    // Expand each once with a dummy session, so a template error fails the push.
    for (name, path, workflow) in &workflows {
        let mut params = session_params(now, None, workflow.timezone());
        params.insert("project".into(), json!(project));
        expand(workflow, path, params, &|p| project_files.read(p))
            .map_err(|e| Error::Project(format!("workflow {name} does not expand: {e}")))?;
    }
    let ProjectFiles::Files(files) = project_files else {
        unreachable!("built above")
    };
    let revision_id = store.push_revision(project, revision, &files).await?;
    let project_id = store.project_id(project).await?;
    let mut scheduled = Vec::new();
    for (name, _, workflow) in &workflows {
        if let Some(spec) = &workflow.schedule {
            let schedule = Schedule::parse(spec).map_err(Error::Project)?;
            let next = schedule.next_after(now).unwrap_or(i64::MAX);
            let spec_json = serde_json::to_string(spec).unwrap_or_default();
            store
                .upsert_schedule(project_id, name, &spec_json, next)
                .await?;
            scheduled.push(name.clone());
        }
    }
    store.drop_schedules_except(project_id, &scheduled).await?;
    Ok((
        revision_id,
        workflows.into_iter().map(|(n, _, _)| n).collect(),
    ))
}
