//! Sessions, attempts, tasks and task logs; starting, retrying and killing.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::AttemptStatus;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Auth, Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::page::{Page, PageQuery};
use crate::state::ApiState;
use crate::views::{AttemptView, SessionView, TaskView};

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(list_attempts, start_attempt))
        .routes(routes!(get_attempt))
        .routes(routes!(retry_attempt))
        .routes(routes!(kill_attempt))
        .routes(routes!(list_tasks))
        .routes(routes!(task_log))
}

/// Which project or workflow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only this project.
    pub project: Option<String>,
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only attempts with this status: running, succeeded, failed, killed.
    pub status: Option<String>,
}

fn status_of(text: Option<&str>) -> ApiResult<Option<AttemptStatus>> {
    match text {
        None => Ok(None),
        Some(s @ ("running" | "succeeded" | "failed" | "killed")) => {
            Ok(Some(AttemptStatus::parse(s)))
        }
        Some(other) => Err(ApiError::invalid(format!(
            "status: {other:?} is not running, succeeded, failed or killed"
        ))),
    }
}

/// Sessions, newest first, with their latest attempt.
#[utoipa::path(get, path = "/api/sessions", tag = "runs",
    params(PageQuery, RunFilter),
    responses((status = 200, body = Page<SessionView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_sessions(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Query(page): Query<PageQuery>,
    Query(filter): Query<RunFilter>,
) -> ApiResult<Json<Page<SessionView>>> {
    let limit = page.limit()?;
    let rows = state
        .store()
        .sessions(
            filter.project.as_deref(),
            filter.workflow.as_deref(),
            page.id_cursor()?,
            limit + 1,
        )
        .await?;
    let items = rows.into_iter().map(SessionView::from).collect();
    Ok(Json(Page::from_fetched(items, limit, |s| s.id.to_string())))
}

/// Attempts, newest first.
#[utoipa::path(get, path = "/api/attempts", tag = "runs",
    params(PageQuery, RunFilter),
    responses((status = 200, body = Page<AttemptView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_attempts(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Query(page): Query<PageQuery>,
    Query(filter): Query<RunFilter>,
) -> ApiResult<Json<Page<AttemptView>>> {
    let limit = page.limit()?;
    let rows = state
        .store()
        .attempts(
            filter.project.as_deref(),
            filter.workflow.as_deref(),
            status_of(filter.status.as_deref())?,
            page.id_cursor()?,
            limit + 1,
        )
        .await?;
    let items = rows.into_iter().map(AttemptView::from).collect();
    Ok(Json(Page::from_fetched(items, limit, |a| a.id.to_string())))
}

/// What to start.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StartRequest {
    /// Project.
    pub project: String,
    /// Workflow.
    pub workflow: String,
    /// Session time: `now` (the default), `YYYY-MM-DD` or RFC 3339.
    pub session: Option<String>,
    /// Parameters that override the workflow's.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// Every transfer of the attempt ignores its saved state and reads
    /// everything again.
    #[serde(default)]
    pub full_refresh: bool,
}

/// Start a workflow of the project's latest revision.
#[utoipa::path(post, path = "/api/attempts", tag = "runs",
    request_body = StartRequest,
    responses((status = 201, body = AttemptView)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn start_attempt(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Json(request): Json<StartRequest>,
) -> ApiResult<(StatusCode, Json<AttemptView>)> {
    let attempt = sluice_server::start_latest(
        state.store(),
        &request.project,
        &request.workflow,
        request.session.as_deref().unwrap_or("now"),
        request.params.into_iter().collect(),
        request.full_refresh,
    )
    .await?;
    tracing::info!(caller = %caller.name, attempt = attempt.id, project = %attempt.project,
        workflow = %attempt.workflow, "api: attempt started");
    Ok((StatusCode::CREATED, Json(attempt.into())))
}

/// One attempt.
#[utoipa::path(get, path = "/api/attempts/{id}", tag = "runs",
    params(("id" = i64, Path, description = "Attempt id")),
    responses((status = 200, body = AttemptView)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn get_attempt(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AttemptView>> {
    Ok(Json(state.store().attempt(id).await?.into()))
}

/// How to retry.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RetryRequest {
    /// Keep what succeeded; run only the failed tasks and what follows
    /// them. False: everything again.
    #[serde(default)]
    pub resume: bool,
    /// The retried transfers ignore their saved state and read everything
    /// again.
    #[serde(default)]
    pub full_refresh: bool,
}

/// Retry a finished attempt as a new attempt of its session.
#[utoipa::path(post, path = "/api/attempts/{id}/retry", tag = "runs",
    params(("id" = i64, Path, description = "Attempt id")),
    request_body = RetryRequest,
    responses((status = 201, body = AttemptView)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn retry_attempt(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Json(request): Json<RetryRequest>,
) -> ApiResult<(StatusCode, Json<AttemptView>)> {
    let attempt =
        sluice_server::retry_attempt(state.store(), id, request.resume, request.full_refresh)
            .await?;
    tracing::info!(caller = %caller.name, attempt = attempt.id, retries = id,
        resume = request.resume, "api: attempt retried");
    Ok((StatusCode::CREATED, Json(attempt.into())))
}

/// Whether a kill was requested.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillResponse {
    /// False when the attempt had finished already.
    pub kill_requested: bool,
}

/// Kill a running attempt: waiting tasks are cancelled, running ones stop
/// at their next heartbeat.
#[utoipa::path(post, path = "/api/attempts/{id}/kill", tag = "runs",
    params(("id" = i64, Path, description = "Attempt id")),
    responses((status = 200, body = KillResponse)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn kill_attempt(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<KillResponse>> {
    state.store().attempt(id).await?;
    let kill_requested = state.store().kill_attempt(id).await?;
    tracing::info!(caller = %caller.name, attempt = id, kill_requested, "api: kill");
    Ok(Json(KillResponse { kill_requested }))
}

/// An attempt's tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// The attempt.
    pub attempt: AttemptView,
    /// Its tasks in creation order (a tree through `parent_id`).
    pub tasks: Vec<TaskView>,
}

/// An attempt's task tree with state, retries, timing and transfer figures.
#[utoipa::path(get, path = "/api/attempts/{id}/tasks", tag = "runs",
    params(("id" = i64, Path, description = "Attempt id")),
    responses((status = 200, body = TaskList)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_tasks(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<TaskList>> {
    let attempt = state.store().attempt(id).await?.into();
    let tasks = state.store().tasks(id).await?;
    Ok(Json(TaskList {
        attempt,
        tasks: tasks.into_iter().map(TaskView::from).collect(),
    }))
}

/// Where in a log to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Byte offset to start at (a previous page's `next_offset`).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// Which lease's log (default: the latest).
    pub lease: Option<i64>,
    /// Follow a running task: when nothing past `offset` is written yet,
    /// wait up to this many milliseconds (at most 30,000) for more.
    #[param(minimum = 0, maximum = 30000)]
    pub wait_ms: Option<u64>,
}

/// A page of a task's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Task id.
    pub task_id: i64,
    /// The lease this log is of (each retry or re-lease writes its own).
    pub lease: Option<i64>,
    /// Leases that have logs.
    pub leases: Vec<i64>,
    /// Text from `offset`.
    pub text: String,
    /// Where this page starts.
    pub offset: u64,
    /// Where the next page starts: poll with it to follow a running task.
    pub next_offset: u64,
    /// True when the task has finished and this page reaches the end.
    pub complete: bool,
}

/// The most bytes of log a page returns.
const LOG_PAGE_BYTES: usize = 256 * 1024;

/// A page of a task's log; ask again from `next_offset` (with `wait_ms`
/// to wait for what is written next) to follow it as it is written.
#[utoipa::path(get, path = "/api/tasks/{id}/log", tag = "runs",
    params(("id" = i64, Path, description = "Task id"), LogQuery),
    responses((status = 200, body = LogPage)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn task_log(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(query.wait_ms.unwrap_or(0).min(30_000));
    loop {
        let page = log_page(&state, id, &query).await?;
        let waiting = !page.complete && page.text.is_empty();
        if !waiting || std::time::Instant::now() >= deadline {
            return Ok(Json(page));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn log_page(state: &ApiState, id: i64, query: &LogQuery) -> ApiResult<LogPage> {
    let (_, task) = state.store().task(id).await?;
    let locations = state.store().task_log_locations(id).await?;
    let leases: Vec<i64> = locations.iter().map(|(l, _)| *l).collect();
    let chosen = match query.lease {
        Some(lease) => Some(
            locations
                .iter()
                .find(|(l, _)| *l == lease)
                .ok_or_else(|| {
                    ApiError::not_found(format!("task {id} has no log of lease {lease}"))
                })?
                .clone(),
        ),
        None => locations.last().cloned(),
    };
    let offset = query.offset.unwrap_or(0);
    let finished = task.finished_at.is_some();
    let Some((lease, location)) = chosen else {
        return Ok(LogPage {
            task_id: id,
            lease: None,
            leases,
            text: String::new(),
            offset,
            next_offset: offset,
            complete: finished,
        });
    };
    let text = tokio::task::spawn_blocking(move || sluice_server::read_log(&location))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::unavailable(format!(
                "the log of task {id} cannot be read here ({e}); it may be on the worker that ran it"
            ))
        })?;
    let bytes = text.as_bytes();
    let start = (offset as usize).min(bytes.len());
    let mut end = (start + LOG_PAGE_BYTES).min(bytes.len());
    // Never split a UTF-8 character: end the page before it.
    while end > start && !text.is_char_boundary(end) {
        end -= 1;
    }
    let start = (start..=end)
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(end);
    Ok(LogPage {
        task_id: id,
        lease: Some(lease),
        leases,
        text: text[start..end].to_string(),
        offset: start as u64,
        next_offset: end as u64,
        complete: finished && end == bytes.len(),
    })
}
