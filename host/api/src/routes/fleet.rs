//! The fleet now: workers and the queue.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Auth, Viewer, now_ms};
use crate::error::ApiResult;
use crate::state::ApiState;
use crate::views::time;

/// A worker that has not sent a heartbeat for this long is gone.
pub const WORKER_ALIVE_MS: i64 = 5 * 60 * 1000;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_workers))
        .routes(routes!(queue))
}

/// A task a worker runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunningTask {
    /// Task id.
    pub task_id: i64,
    /// Its attempt.
    pub attempt_id: i64,
    /// Its name.
    pub name: String,
}

/// A worker process.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerView {
    /// Worker id.
    pub id: String,
    /// Host.
    pub host: String,
    /// Roles it plays.
    pub roles: String,
    /// Started.
    pub started_at: String,
    /// Last heartbeat.
    pub heartbeat_at: String,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_seconds: f64,
    /// Shutting down.
    pub stopping: bool,
    /// What it runs now.
    pub running: Vec<RunningTask>,
}

/// Workers seen in the last five minutes, with their current tasks.
#[utoipa::path(get, path = "/api/workers", tag = "fleet",
    responses((status = 200, body = Vec<WorkerView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_workers(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
) -> ApiResult<Json<Vec<WorkerView>>> {
    let now = now_ms();
    let workers = state.store().workers(now - WORKER_ALIVE_MS).await?;
    Ok(Json(
        workers
            .into_iter()
            .map(|w| WorkerView {
                heartbeat_age_seconds: (now - w.heartbeat_at).max(0) as f64 / 1000.0,
                id: w.id,
                host: w.host,
                roles: w.roles,
                started_at: time(w.started_at),
                heartbeat_at: time(w.heartbeat_at),
                stopping: w.stopping,
                running: w
                    .running
                    .into_iter()
                    .map(|(task_id, attempt_id, name)| RunningTask {
                        task_id,
                        attempt_id,
                        name,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// The queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Tasks ready to run now.
    pub ready: i64,
    /// How long the oldest ready task has waited, seconds.
    pub oldest_ready_seconds: f64,
    /// Tasks by state.
    pub by_state: std::collections::BTreeMap<String, i64>,
}

/// Queue depth and tasks by state.
#[utoipa::path(get, path = "/api/queue", tag = "fleet",
    responses((status = 200, body = QueueView)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn queue(_: Auth<Viewer>, State(state): State<ApiState>) -> ApiResult<Json<QueueView>> {
    let (ready, oldest_ms) = state.store().queue_depth().await?;
    let by_state = state.store().task_counts().await?.into_iter().collect();
    Ok(Json(QueueView {
        ready,
        oldest_ready_seconds: oldest_ms.max(0) as f64 / 1000.0,
        by_state,
    }))
}
