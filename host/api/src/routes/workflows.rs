//! Projects and their revisions, workflows, and schedules (enable,
//! disable, backfill, skip).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_server::ProjectFiles;
use sluice_store::ScheduleRecord;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Admin, Auth, Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::page::{Page, PageQuery};
use crate::state::ApiState;
use crate::views::time;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(list_revisions))
        .routes(routes!(list_workflows))
        .routes(routes!(list_schedules))
        .routes(routes!(enable_schedule))
        .routes(routes!(disable_schedule))
        .routes(routes!(backfill_schedule))
        .routes(routes!(skip_schedule))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(push_revision))
                .layer(DefaultBodyLimit::max(MAX_ARCHIVE_BYTES)),
        )
}

/// The most bytes a pushed archive may hold, compressed.
const MAX_ARCHIVE_BYTES: usize = 16 << 20;

/// A project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    /// Name.
    pub name: String,
    /// Its latest revision's id.
    pub revision_id: Option<i64>,
    /// Its latest revision's name.
    pub revision: Option<String>,
}

/// Projects by name.
#[utoipa::path(get, path = "/api/projects", tag = "projects",
    params(PageQuery),
    responses((status = 200, body = Page<ProjectView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_projects(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<ProjectView>>> {
    let limit = page.limit()?;
    let after = page.cursor.clone();
    let items: Vec<ProjectView> = state
        .store()
        .projects()
        .await?
        .into_iter()
        .filter(|p| after.as_ref().is_none_or(|a| &p.name > a))
        .take(limit as usize + 1)
        .map(|p| ProjectView {
            name: p.name,
            revision_id: p.revision.as_ref().map(|r| r.0),
            revision: p.revision.map(|r| r.1),
        })
        .collect();
    Ok(Json(Page::from_fetched(items, limit, |p| p.name.clone())))
}

/// A pushed revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Pushed.
    pub created_at: String,
}

/// A project's revisions, newest first.
#[utoipa::path(get, path = "/api/projects/{project}/revisions", tag = "projects",
    params(("project" = String, Path, description = "Project name"), PageQuery),
    responses((status = 200, body = Page<RevisionView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_revisions(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Path(project): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<RevisionView>>> {
    let limit = page.limit()?;
    let rows = state
        .store()
        .revisions(&project, page.id_cursor()?, limit + 1)
        .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, created_at)| RevisionView {
            id,
            name,
            created_at: time(created_at),
        })
        .collect();
    Ok(Json(Page::from_fetched(items, limit, |r| r.id.to_string())))
}

/// How to name a pushed revision.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushQuery {
    /// The revision's name (default: the time of the push).
    pub revision: Option<String>,
}

/// What a push made.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushedView {
    /// Project.
    pub project: String,
    /// The new revision's id.
    pub revision_id: i64,
    /// Its name.
    pub revision: String,
    /// How many files it holds.
    pub files: usize,
    /// The workflows in it.
    pub workflows: Vec<String>,
}

/// Push a revision: the project's files as a gzipped tar (what `sluice
/// push --server` sends). Entries must be relative paths inside the
/// project, regular files of UTF-8 text; links, devices, `..`, absolute
/// paths and archives that unpack past the limits are refused by name.
#[utoipa::path(post, path = "/api/projects/{project}/revisions", tag = "projects",
    params(("project" = String, Path, description = "Project name"), PushQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A .tar.gz of the project's files (sent as application/gzip or application/octet-stream)"),
    responses((status = 201, body = PushedView)),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn push_revision(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Path(project): Path<String>,
    Query(query): Query<PushQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PushedView>)> {
    check_name("project", &project)?;
    let revision = query
        .revision
        .unwrap_or_else(|| chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string());
    check_name("revision", &revision)?;
    let files = tokio::task::spawn_blocking(move || sluice_server::unpack(&body))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::invalid(format!("project {project}: {e}")))?;
    let count = files.len();
    let now = sluice_server::now_ms();
    let (revision_id, workflows) =
        sluice_server::push_project(state.store(), &project, &revision, files, now).await?;
    tracing::info!(caller = %caller.name, %project, %revision, files = count, "api: revision pushed");
    Ok((
        StatusCode::CREATED,
        Json(PushedView {
            project,
            revision_id,
            revision,
            files: count,
            workflows,
        }),
    ))
}

/// Names end up in paths and URLs: keep them plain.
fn check_name(what: &str, name: &str) -> ApiResult<()> {
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{what} {name:?}: use 1 to 128 letters, digits, `-`, `_` or `.`, not starting with `.`"
        )))
    }
}

/// Which project.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectFilter {
    /// Only this project.
    pub project: Option<String>,
}

/// A workflow of a project's latest revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    /// Project.
    pub project: String,
    /// Workflow name.
    pub name: String,
    /// Its file in the project.
    pub path: String,
    /// The revision it is from.
    pub revision: String,
    /// Time zone of its sessions.
    pub timezone: String,
    /// Its schedule, as the file gives it.
    #[schema(value_type = Object)]
    pub schedule: Value,
    /// When it runs next, if it is scheduled and enabled.
    pub next_run_time: Option<String>,
    /// Whether the schedule fires.
    pub schedule_enabled: Option<bool>,
}

/// Workflows of each project's latest revision, with their schedules.
#[utoipa::path(get, path = "/api/workflows", tag = "projects",
    params(ProjectFilter, PageQuery),
    responses((status = 200, body = Page<WorkflowView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_workflows(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Query(filter): Query<ProjectFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<WorkflowView>>> {
    let limit = page.limit()?;
    let schedules = state.store().schedules(None).await?;
    let mut items = Vec::new();
    for project in state.store().projects().await? {
        if filter.project.as_ref().is_some_and(|p| p != &project.name) {
            continue;
        }
        let Some((revision_id, revision)) = project.revision else {
            continue;
        };
        let files = ProjectFiles::Files(state.store().revision_files(revision_id).await?);
        // A pushed revision parsed when it was pushed; if it stopped parsing
        // (a newer host), list nothing for it rather than fail the page.
        let Ok(workflows) = files.workflows() else {
            continue;
        };
        for (name, path, workflow) in workflows {
            let key = format!("{}/{name}", project.name);
            if page.cursor.as_ref().is_some_and(|c| &key <= c) {
                continue;
            }
            let schedule = schedules
                .iter()
                .find(|s| s.project == project.name && s.workflow == name);
            items.push(WorkflowView {
                project: project.name.clone(),
                name,
                path,
                revision: revision.clone(),
                timezone: workflow.timezone().to_string(),
                schedule: serde_json::to_value(&workflow.schedule).unwrap_or(Value::Null),
                next_run_time: schedule.and_then(next_run),
                schedule_enabled: schedule.map(|s| s.enabled),
            });
        }
    }
    items.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
    items.truncate(limit as usize + 1);
    Ok(Json(Page::from_fetched(items, limit, |w| {
        format!("{}/{}", w.project, w.name)
    })))
}

fn next_run(s: &ScheduleRecord) -> Option<String> {
    (s.enabled && s.next_run_time < i64::MAX).then(|| time(s.next_run_time))
}

/// A workflow's schedule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// Id.
    pub id: i64,
    /// Project.
    pub project: String,
    /// Workflow.
    pub workflow: String,
    /// The schedule as the workflow file gives it.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// When it fires next (absent when disabled).
    pub next_run_time: Option<String>,
    /// The last session time it fired.
    pub last_session_time: Option<String>,
    /// Whether it fires.
    pub enabled: bool,
}

impl From<ScheduleRecord> for ScheduleView {
    fn from(s: ScheduleRecord) -> ScheduleView {
        ScheduleView {
            next_run_time: next_run(&s),
            id: s.id,
            project: s.project,
            workflow: s.workflow,
            spec: serde_json::from_str(&s.spec).unwrap_or(Value::Null),
            last_session_time: s.last_session_time.map(time),
            enabled: s.enabled,
        }
    }
}

/// Schedules with their next run times.
#[utoipa::path(get, path = "/api/schedules", tag = "schedules",
    params(ProjectFilter, PageQuery),
    responses((status = 200, body = Page<ScheduleView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_schedules(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Query(filter): Query<ProjectFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<ScheduleView>>> {
    let limit = page.limit()?;
    let after = page.id_cursor()?;
    let mut all = state.store().schedules(None).await?;
    all.sort_by_key(|s| s.id);
    let items = all
        .into_iter()
        .filter(|s| filter.project.as_ref().is_none_or(|p| p == &s.project))
        .filter(|s| after.is_none_or(|a| s.id > a))
        .take(limit as usize + 1)
        .map(ScheduleView::from)
        .collect();
    Ok(Json(Page::from_fetched(items, limit, |s| s.id.to_string())))
}

async fn schedule_view(state: &ApiState, project: &str, workflow: &str) -> ApiResult<ScheduleView> {
    let (record, _, _) = sluice_server::schedule_of(state.store(), project, workflow).await?;
    Ok(record.into())
}

/// Turn a schedule on: it fires from the next time after now.
#[utoipa::path(post, path = "/api/schedules/{project}/{workflow}/enable", tag = "schedules",
    params(("project" = String, Path), ("workflow" = String, Path)),
    responses((status = 200, body = ScheduleView)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn enable_schedule(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Path((project, workflow)): Path<(String, String)>,
) -> ApiResult<Json<ScheduleView>> {
    sluice_server::set_schedule_enabled(state.store(), &project, &workflow, true).await?;
    tracing::info!(caller = %caller.name, %project, %workflow, "api: schedule enabled");
    Ok(Json(schedule_view(&state, &project, &workflow).await?))
}

/// Turn a schedule off.
#[utoipa::path(post, path = "/api/schedules/{project}/{workflow}/disable", tag = "schedules",
    params(("project" = String, Path), ("workflow" = String, Path)),
    responses((status = 200, body = ScheduleView)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn disable_schedule(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Path((project, workflow)): Path<(String, String)>,
) -> ApiResult<Json<ScheduleView>> {
    sluice_server::set_schedule_enabled(state.store(), &project, &workflow, false).await?;
    tracing::info!(caller = %caller.name, %project, %workflow, "api: schedule disabled");
    Ok(Json(schedule_view(&state, &project, &workflow).await?))
}

/// A range of session times.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BackfillRequest {
    /// First session time (inclusive): `YYYY-MM-DD` or RFC 3339.
    pub from: String,
    /// Last session time (exclusive).
    pub to: String,
}

/// What a backfill started.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillResponse {
    /// Attempts started, one per session time that had not run.
    pub started: Vec<BackfillStarted>,
    /// Session times that had run already (left alone).
    pub existed: usize,
}

/// One started session of a backfill.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillStarted {
    /// Attempt id.
    pub attempt_id: i64,
    /// Its session time.
    pub session_time: String,
}

/// Run the sessions the schedule would have fired in a range.
#[utoipa::path(post, path = "/api/schedules/{project}/{workflow}/backfill", tag = "schedules",
    params(("project" = String, Path), ("workflow" = String, Path)),
    request_body = BackfillRequest,
    responses((status = 200, body = BackfillResponse)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn backfill_schedule(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Path((project, workflow)): Path<(String, String)>,
    Json(request): Json<BackfillRequest>,
) -> ApiResult<Json<BackfillResponse>> {
    let done = sluice_server::backfill(
        state.store(),
        &project,
        &workflow,
        &request.from,
        &request.to,
    )
    .await?;
    tracing::info!(caller = %caller.name, %project, %workflow, started = done.started.len(),
        "api: backfill");
    Ok(Json(BackfillResponse {
        started: done
            .started
            .into_iter()
            .map(|(attempt_id, t)| BackfillStarted {
                attempt_id,
                session_time: time(t),
            })
            .collect(),
        existed: done.existed,
    }))
}

/// Until when to skip.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SkipRequest {
    /// The first session time that should fire again.
    pub until: String,
}

/// Skip a schedule's runs before a time.
#[utoipa::path(post, path = "/api/schedules/{project}/{workflow}/skip", tag = "schedules",
    params(("project" = String, Path), ("workflow" = String, Path)),
    request_body = SkipRequest,
    responses((status = 200, body = ScheduleView)),
    security(("token" = ["operator"]), ("session" = ["operator"])))]
async fn skip_schedule(
    Auth { caller, .. }: Auth<Operator>,
    State(state): State<ApiState>,
    Path((project, workflow)): Path<(String, String)>,
    Json(request): Json<SkipRequest>,
) -> ApiResult<Json<ScheduleView>> {
    sluice_server::skip_schedule(state.store(), &project, &workflow, &request.until).await?;
    tracing::info!(caller = %caller.name, %project, %workflow, until = %request.until,
        "api: schedule skipped");
    Ok(Json(schedule_view(&state, &project, &workflow).await?))
}
