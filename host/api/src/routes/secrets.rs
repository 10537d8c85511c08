//! Project secrets: set, list (names only), delete. A value goes in and is
//! never sent back: not here, not in an error, not in a log line.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Admin, Auth};
use crate::error::{ApiError, ApiResult};
use crate::page::{Page, PageQuery};
use crate::state::ApiState;
use crate::views::time;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets))
        .routes(routes!(put_secret, delete_secret))
}

/// A secret, without its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// Name, as `${secret:name}` uses it.
    pub name: String,
    /// Last set.
    pub updated_at: String,
}

/// The names of a project's secrets.
#[utoipa::path(get, path = "/api/projects/{project}/secrets", tag = "secrets",
    params(("project" = String, Path, description = "Project name"), PageQuery),
    responses((status = 200, body = Page<SecretView>)),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn list_secrets(
    _: Auth<Admin>,
    State(state): State<ApiState>,
    Path(project): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<SecretView>>> {
    let limit = page.limit()?;
    let names = state
        .store()
        .secret_names(&project, page.cursor.as_deref(), limit + 1)
        .await?;
    let items = names
        .into_iter()
        .map(|(name, updated_at)| SecretView {
            name,
            updated_at: time(updated_at),
        })
        .collect();
    Ok(Json(Page::from_fetched(items, limit, |s| s.name.clone())))
}

/// A secret's value.
#[derive(Deserialize, ToSchema)]
pub struct SecretValue {
    /// The value; write-only.
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "secret name: letters, digits, '_', '-' and '.', at most 200",
        ))
    }
}

/// Set (or replace) a secret.
#[utoipa::path(put, path = "/api/projects/{project}/secrets/{name}", tag = "secrets",
    params(("project" = String, Path), ("name" = String, Path)),
    request_body = SecretValue,
    responses((status = 204, description = "Set")),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn put_secret(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Path((project, name)): Path<(String, String)>,
    Json(body): Json<SecretValue>,
) -> ApiResult<StatusCode> {
    check_name(&name)?;
    let key = state.secret_key().ok_or_else(|| {
        ApiError::unavailable("this server has no SLUICE_SECRET_KEY; secrets cannot be stored")
    })?;
    state
        .store()
        .set_secret(key, &project, &name, &body.value)
        .await?;
    tracing::info!(caller = %caller.name, %project, secret = %name, "api: secret set");
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a secret.
#[utoipa::path(delete, path = "/api/projects/{project}/secrets/{name}", tag = "secrets",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "Deleted")),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn delete_secret(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if !state.store().delete_secret(&project, &name).await? {
        return Err(ApiError::not_found(format!(
            "project {project} has no secret {name}"
        )));
    }
    tracing::info!(caller = %caller.name, %project, secret = %name, "api: secret deleted");
    Ok(StatusCode::NO_CONTENT)
}
