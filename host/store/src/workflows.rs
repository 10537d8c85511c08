//! Projects, their pushed revisions, sessions and attempts; an attempt's
//! task graph goes into the queue in one transaction.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Error, Result, Store, queue};

/// How a task is retried after it fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first failure.
    pub limit: i64,
    /// Wait before the first retry, in milliseconds.
    pub interval_ms: i64,
    /// Double the wait after each retry.
    pub exponential: bool,
}

/// How a task enters the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStart {
    /// Runs when its upstream tasks are done.
    Active,
    /// An `on_error` handler: wakes only when the task it guards fails.
    Dormant,
}

/// One node of an attempt's task graph, before it has an id.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Index of the parent node in the plan.
    pub parent: Option<usize>,
    /// Full name, e.g. `+daily+load[region=eu]`.
    pub name: String,
    /// `group` and `skip` are barriers the queue completes itself; any
    /// other kind is run by a worker.
    pub kind: String,
    /// The task's configuration (JSON).
    pub config: String,
    /// Parameters for templating (JSON object).
    pub params: String,
    /// Indexes of the nodes that must finish first.
    pub upstream: Vec<usize>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Active or dormant.
    pub start: TaskStart,
    /// For a handler's root: the node whose failure wakes it.
    pub on_error_of: Option<usize>,
    /// For every node of a handler: the handler's root.
    pub error_root: Option<usize>,
}

/// An attempt's task graph: node 0 is the root.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The nodes, parents before children.
    pub tasks: Vec<NewTask>,
}

/// What [`Store::start_attempt`] needs.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    /// The project.
    pub project_id: i64,
    /// The workflow's name.
    pub workflow: &'a str,
    /// The session's time, ms since the epoch.
    pub session_time: i64,
    /// The revision it runs (none for a workflow file run in place).
    pub revision_id: Option<i64>,
    /// Parameters (JSON object).
    pub params: &'a str,
    /// The task graph.
    pub plan: &'a Plan,
    /// Do nothing if the session exists (the scheduler's case).
    pub only_new_session: bool,
    /// Resume a failed attempt: tasks that succeeded there are not run again.
    pub resume_from: Option<i64>,
    /// The workflow's `max_running`: at most this many of its tasks run at
    /// once, across all its sessions.
    pub max_running: Option<i64>,
}

/// What ties the tasks of one workflow together under its `max_running`.
fn limit_key(project_id: i64, workflow: &str) -> String {
    format!("{project_id}/{workflow}")
}

/// A project.
#[derive(Debug, Clone)]
pub struct ProjectRecord {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The latest revision's id and name.
    pub revision: Option<(i64, String)>,
}

/// How an attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Tasks are still running or waiting.
    Running,
    /// Every task succeeded (or was skipped).
    Succeeded,
    /// A task failed after its retries.
    Failed,
    /// Killed by a user.
    Killed,
}

impl AttemptStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Running => "running",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Killed => "killed",
        }
    }

    /// Read the stored text (anything unknown reads as running).
    pub fn parse(s: &str) -> AttemptStatus {
        match s {
            "succeeded" => AttemptStatus::Succeeded,
            "failed" => AttemptStatus::Failed,
            "killed" => AttemptStatus::Killed,
            _ => AttemptStatus::Running,
        }
    }

    /// Whether the attempt is over.
    pub fn is_done(self) -> bool {
        self != AttemptStatus::Running
    }
}

/// An attempt with its session.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Attempt id.
    pub id: i64,
    /// Session id.
    pub session_id: i64,
    /// Project name.
    pub project: String,
    /// Workflow name.
    pub workflow: String,
    /// The session's time, ms since the epoch.
    pub session_time: i64,
    /// Status.
    pub status: AttemptStatus,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Finished, ms since the epoch.
    pub finished_at: Option<i64>,
    /// The revision the session runs.
    pub revision_id: Option<i64>,
    /// The attempt's parameters (JSON).
    pub params: String,
}

/// A task as listings show it.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    /// Id.
    pub id: i64,
    /// Parent id.
    pub parent_id: Option<i64>,
    /// Full name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// State (see the migration for the machine).
    pub state: String,
    /// Retries so far (failures and expired leases).
    pub retries: i64,
    /// Times a worker leased it.
    pub lease_count: i64,
    /// Leases that expired (a worker lost).
    pub lease_expiries: i64,
    /// Started, ms since the epoch.
    pub started_at: Option<i64>,
    /// Finished, ms since the epoch.
    pub finished_at: Option<i64>,
    /// The last error.
    pub error: Option<String>,
    /// What a transfer moved (JSON), if it was one.
    pub summary: Option<String>,
}

const TASK_COLUMNS: &str = "id, parent_id, name, kind, state, retries, lease_count, \
     lease_expiries, started_at, finished_at, error, summary";

fn task_from_row(r: &AnyRow) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: r.try_get(0)?,
        parent_id: r.try_get(1)?,
        name: r.try_get(2)?,
        kind: r.try_get(3)?,
        state: r.try_get(4)?,
        retries: r.try_get(5)?,
        lease_count: r.try_get(6)?,
        lease_expiries: r.try_get(7)?,
        started_at: r.try_get(8)?,
        finished_at: r.try_get(9)?,
        error: r.try_get(10)?,
        summary: r.try_get(11)?,
    })
}

/// A session with its latest attempt.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Session id.
    pub id: i64,
    /// Project name.
    pub project: String,
    /// Workflow name.
    pub workflow: String,
    /// The session's time, ms since the epoch.
    pub session_time: i64,
    /// The revision it runs.
    pub revision_id: Option<i64>,
    /// Its latest attempt.
    pub last_attempt: Option<i64>,
    /// That attempt's status.
    pub last_status: Option<AttemptStatus>,
}

const ATTEMPT_COLUMNS: &str = "a.id, a.session_id, p.name, s.workflow, s.session_time, a.status, \
     a.created_at, a.finished_at, s.revision_id, a.params";

fn attempt_from_row(r: &AnyRow) -> Result<AttemptRecord> {
    Ok(AttemptRecord {
        id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        project: r.try_get(2)?,
        workflow: r.try_get(3)?,
        session_time: r.try_get(4)?,
        status: AttemptStatus::parse(&r.try_get::<String, _>(5)?),
        created_at: r.try_get(6)?,
        finished_at: r.try_get(7)?,
        revision_id: r.try_get(8)?,
        params: r.try_get(9)?,
    })
}

impl Store {
    /// The project's id, creating it if new.
    ///
    /// # Errors
    /// On a database error.
    pub async fn ensure_project(&self, name: &str) -> Result<i64> {
        sqlx::query(&self.sql(
            "INSERT INTO projects (name, created_at) VALUES ($1, {now}) \
             ON CONFLICT (name) DO NOTHING",
        ))
        .bind(name)
        .execute(&self.pool)
        .await?;
        self.project_id(name).await
    }

    /// A project's id.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such project.
    pub async fn project_id(&self, name: &str) -> Result<i64> {
        let row = sqlx::query("SELECT id FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(Error::NotFound(format!("project {name}"))),
        }
    }

    /// Store a revision of a project: its files (path → text).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the revision name is taken.
    pub async fn push_revision(
        &self,
        project: &str,
        revision: &str,
        files: &BTreeMap<String, String>,
    ) -> Result<i64> {
        let project_id = self.ensure_project(project).await?;
        let files = serde_json::to_string(files).map_err(|e| Error::Data(e.to_string()))?;
        let row = sqlx::query(&self.sql(
            "INSERT INTO revisions (project_id, name, files, created_at) \
             VALUES ($1, $2, $3, {now}) ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
        ))
        .bind(project_id)
        .bind(revision)
        .bind(files)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(Error::Conflict(format!(
                "project {project} already has a revision {revision}"
            ))),
        }
    }

    /// A project's latest revision: (id, name).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the project has none.
    pub async fn latest_revision(&self, project: &str) -> Result<(i64, String)> {
        let row = sqlx::query(
            "SELECT r.id, r.name FROM revisions r JOIN projects p ON p.id = r.project_id \
             WHERE p.name = $1 ORDER BY r.id DESC LIMIT 1",
        )
        .bind(project)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok((r.try_get(0)?, r.try_get(1)?)),
            None => Err(Error::NotFound(format!(
                "a pushed revision of project {project}"
            ))),
        }
    }

    /// A revision's files.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id.
    pub async fn revision_files(&self, revision: i64) -> Result<BTreeMap<String, String>> {
        let row = sqlx::query("SELECT files FROM revisions WHERE id = $1")
            .bind(revision)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("revision {revision}")))?;
        serde_json::from_str(&row.try_get::<String, _>(0)?).map_err(|e| Error::Data(e.to_string()))
    }

    /// Every project with its latest revision.
    ///
    /// # Errors
    /// On a database error.
    pub async fn projects(&self) -> Result<Vec<ProjectRecord>> {
        let rows = sqlx::query(
            "SELECT p.id, p.name, r.id, r.name FROM projects p \
             LEFT JOIN revisions r ON r.id = (SELECT max(id) FROM revisions WHERE project_id = p.id) \
             ORDER BY p.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let rev: Option<i64> = r.try_get(2)?;
                Ok(ProjectRecord {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    revision: match rev {
                        Some(id) => Some((id, r.try_get(3)?)),
                        None => None,
                    },
                })
            })
            .collect()
    }

    /// Start an attempt of a workflow's session, putting its task graph in
    /// the queue. `None` when [`NewAttempt::only_new_session`] and the
    /// session exists already: a scheduled time fires once.
    ///
    /// # Errors
    /// On a database error.
    pub async fn start_attempt(&self, new: &NewAttempt<'_>) -> Result<Option<AttemptRecord>> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(&self.sql(
            "INSERT INTO sessions (project_id, workflow, session_time, revision_id, created_at) \
             VALUES ($1, $2, $3, $4, {now}) \
             ON CONFLICT (project_id, workflow, session_time) DO NOTHING RETURNING id",
        ))
        .bind(new.project_id)
        .bind(new.workflow)
        .bind(new.session_time)
        .bind(new.revision_id)
        .fetch_optional(&mut *tx)
        .await?;
        let session_id: i64 = match created {
            Some(r) => r.try_get(0)?,
            None if new.only_new_session => return Ok(None),
            None => {
                let r = sqlx::query(
                    "SELECT id FROM sessions WHERE project_id = $1 AND workflow = $2 \
                     AND session_time = $3",
                )
                .bind(new.project_id)
                .bind(new.workflow)
                .bind(new.session_time)
                .fetch_one(&mut *tx)
                .await?;
                let id: i64 = r.try_get(0)?;
                sqlx::query("UPDATE sessions SET revision_id = $1 WHERE id = $2")
                    .bind(new.revision_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
        };
        let attempt_id: i64 = sqlx::query(&self.sql(
            "INSERT INTO attempts (session_id, params, created_at, resumed_from) \
             VALUES ($1, $2, {now}, $3) RETURNING id",
        ))
        .bind(session_id)
        .bind(new.params)
        .bind(new.resume_from)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let limit = new
            .max_running
            .map(|max| (limit_key(new.project_id, new.workflow), max.max(1)));
        queue::insert_plan(
            self,
            &mut tx,
            attempt_id,
            new.plan,
            limit.as_ref().map(|(k, m)| (k.as_str(), *m)),
        )
        .await?;
        if let Some(previous) = new.resume_from {
            queue::keep_succeeded(self, &mut tx, attempt_id, previous).await?;
        }
        queue::notify(self, &mut tx).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok(Some(self.attempt(attempt_id).await?))
    }

    /// One attempt.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id.
    pub async fn attempt(&self, id: i64) -> Result<AttemptRecord> {
        let row = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN sessions s ON s.id = a.session_id \
             JOIN projects p ON p.id = s.project_id WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("attempt {id}")))?;
        attempt_from_row(&row)
    }

    /// Attempts, newest first, optionally of one project, workflow or status,
    /// older than the cursor `before` (an attempt id).
    ///
    /// # Errors
    /// On a database error.
    pub async fn attempts(
        &self,
        project: Option<&str>,
        workflow: Option<&str>,
        status: Option<AttemptStatus>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN sessions s ON s.id = a.session_id \
             JOIN projects p ON p.id = s.project_id \
             WHERE ($1 IS NULL OR p.name = $1) AND ($2 IS NULL OR s.workflow = $2) \
             AND ($3 IS NULL OR a.id < $3) AND ($5 IS NULL OR a.status = $5) \
             ORDER BY a.id DESC LIMIT $4"
        ))
        .bind(project)
        .bind(workflow)
        .bind(before)
        .bind(limit)
        .bind(status.map(AttemptStatus::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// The session time of the workflow's latest session before `time`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn last_session_time(
        &self,
        project_id: i64,
        workflow: &str,
        time: i64,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT max(session_time) FROM sessions WHERE project_id = $1 AND workflow = $2 \
             AND session_time < $3",
        )
        .bind(project_id)
        .bind(workflow)
        .bind(time)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// An attempt's tasks in creation order.
    ///
    /// # Errors
    /// On a database error.
    pub async fn tasks(&self, attempt: i64) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE attempt_id = $1 ORDER BY id"
        ))
        .bind(attempt)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Record where a lease of a task writes its log (again when it moves).
    ///
    /// # Errors
    /// On a database error.
    pub async fn add_task_log(
        &self,
        task: i64,
        lease: i64,
        location: &str,
        worker: &str,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO task_logs (task_id, lease, location, worker, created_at) \
             VALUES ($1, $2, $3, $4, {now}) ON CONFLICT (task_id, lease) DO UPDATE SET \
             location = excluded.location",
        ))
        .bind(task)
        .bind(lease)
        .bind(location)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The logs of an attempt's tasks: (task id, task name, lease, location).
    ///
    /// # Errors
    /// On a database error.
    pub async fn task_logs(&self, attempt: i64) -> Result<Vec<(i64, String, i64, String)>> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, l.lease, l.location FROM task_logs l \
             JOIN tasks t ON t.id = l.task_id WHERE t.attempt_id = $1 ORDER BY t.id, l.lease",
        )
        .bind(attempt)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// One task.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id.
    pub async fn task(&self, id: i64) -> Result<(i64, TaskRecord)> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS}, attempt_id FROM tasks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        Ok((row.try_get(12)?, task_from_row(&row)?))
    }

    /// Where each lease of a task wrote its log: (lease, location).
    ///
    /// # Errors
    /// On a database error.
    pub async fn task_log_locations(&self, task: i64) -> Result<Vec<(i64, String)>> {
        let rows =
            sqlx::query("SELECT lease, location FROM task_logs WHERE task_id = $1 ORDER BY lease")
                .bind(task)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Sessions, newest first, with their latest attempt; optionally of
    /// one project or workflow, older than the cursor `before` (a session id).
    ///
    /// # Errors
    /// On a database error.
    pub async fn sessions(
        &self,
        project: Option<&str>,
        workflow: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT s.id, p.name, s.workflow, s.session_time, s.revision_id, a.id, a.status \
             FROM sessions s JOIN projects p ON p.id = s.project_id \
             LEFT JOIN attempts a ON a.id = (SELECT max(id) FROM attempts WHERE session_id = s.id) \
             WHERE ($1 IS NULL OR p.name = $1) AND ($2 IS NULL OR s.workflow = $2) \
             AND ($3 IS NULL OR s.id < $3) ORDER BY s.id DESC LIMIT $4",
        )
        .bind(project)
        .bind(workflow)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionRecord {
                    id: r.try_get(0)?,
                    project: r.try_get(1)?,
                    workflow: r.try_get(2)?,
                    session_time: r.try_get(3)?,
                    revision_id: r.try_get(4)?,
                    last_attempt: r.try_get(5)?,
                    last_status: r
                        .try_get::<Option<String>, _>(6)?
                        .map(|s| AttemptStatus::parse(&s)),
                })
            })
            .collect()
    }

    /// A project's revisions, newest first: (id, name, created_at), older
    /// than the cursor `before` (an id).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown project.
    pub async fn revisions(
        &self,
        project: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, String, i64)>> {
        let project_id = self.project_id(project).await?;
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM revisions WHERE project_id = $1 \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(project_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}
