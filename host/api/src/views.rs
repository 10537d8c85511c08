//! What the API returns: the store's records as JSON, times as RFC 3339.
//! They deserialize too, so the remote CLI reads exactly what is served.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::{AttemptRecord, SessionRecord, TaskRecord};
use utoipa::ToSchema;

/// An instant as RFC 3339 text (UTC, milliseconds).
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - start?)
}

/// A session: one scheduled (or started) time of a workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id.
    pub id: i64,
    /// Project.
    pub project: String,
    /// Workflow.
    pub workflow: String,
    /// The session's time.
    pub session_time: String,
    /// The revision it runs.
    pub revision_id: Option<i64>,
    /// Its latest attempt.
    pub last_attempt_id: Option<i64>,
    /// That attempt's status.
    pub status: Option<String>,
}

impl From<SessionRecord> for SessionView {
    fn from(s: SessionRecord) -> SessionView {
        SessionView {
            id: s.id,
            project: s.project,
            workflow: s.workflow,
            session_time: time(s.session_time),
            revision_id: s.revision_id,
            last_attempt_id: s.last_attempt,
            status: s.last_status.map(|s| s.as_str().to_string()),
        }
    }
}

/// One run of a session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// Attempt id.
    pub id: i64,
    /// Session id.
    pub session_id: i64,
    /// Project.
    pub project: String,
    /// Workflow.
    pub workflow: String,
    /// The session's time.
    pub session_time: String,
    /// `running`, `succeeded`, `failed` or `killed`.
    pub status: String,
    /// Created.
    pub created_at: String,
    /// Finished.
    pub finished_at: Option<String>,
    /// Took, ms.
    pub duration_ms: Option<i64>,
    /// The revision it runs.
    pub revision_id: Option<i64>,
    /// Its parameters.
    #[schema(value_type = Object)]
    pub params: Value,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> AttemptView {
        AttemptView {
            id: a.id,
            session_id: a.session_id,
            project: a.project,
            workflow: a.workflow,
            session_time: time(a.session_time),
            status: a.status.as_str().to_string(),
            created_at: time(a.created_at),
            finished_at: a.finished_at.map(time),
            duration_ms: duration(Some(a.created_at), a.finished_at),
            revision_id: a.revision_id,
            params: serde_json::from_str(&a.params).unwrap_or(Value::Null),
        }
    }
}

/// A task of an attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    /// Task id.
    pub id: i64,
    /// The group it belongs to.
    pub parent_id: Option<i64>,
    /// Full name (`+main+load`).
    pub name: String,
    /// `transfer`, `sh`, `http`, `call`, `group`, …
    pub kind: String,
    /// `blocked`, `ready`, `running`, `succeeded`, `failed`, `cancelled`, …
    pub state: String,
    /// Retries so far.
    pub retries: i64,
    /// Times a worker leased it.
    pub lease_count: i64,
    /// Leases that expired (a worker lost).
    pub lease_expiries: i64,
    /// Started.
    pub started_at: Option<String>,
    /// Finished.
    pub finished_at: Option<String>,
    /// Took, ms.
    pub duration_ms: Option<i64>,
    /// The last error.
    pub error: Option<String>,
    /// What a transfer moved: rows, bytes_in, bytes_out, rows_per_second, …
    /// (null for tasks that move nothing, and until one finishes).
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
}

impl From<TaskRecord> for TaskView {
    fn from(t: TaskRecord) -> TaskView {
        TaskView {
            id: t.id,
            parent_id: t.parent_id,
            name: t.name,
            kind: t.kind,
            state: t.state,
            retries: t.retries,
            lease_count: t.lease_count,
            lease_expiries: t.lease_expiries,
            started_at: t.started_at.map(time),
            finished_at: t.finished_at.map(time),
            duration_ms: duration(t.started_at, t.finished_at),
            error: t.error,
            summary: t.summary.and_then(|s| serde_json::from_str(&s).ok()),
        }
    }
}
