//! The plugins this server has: what jobs on it can name.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Auth, Viewer};
use crate::error::ApiResult;
use crate::page::{Page, PageQuery};
use crate::state::ApiState;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_plugins))
}

/// An installed plugin, as it describes itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginView {
    /// Its file, the cursor of the list.
    pub file: String,
    /// Short name (`file`, `postgres`).
    pub name: Option<String>,
    /// Semver.
    pub version: Option<String>,
    /// `source`, `filter` or `sink`.
    pub kind: Option<String>,
    /// One line about it.
    pub description: Option<String>,
    /// Capabilities it asks for (`blob`, `sql`, `http`).
    pub capabilities: Vec<String>,
    /// The `sluice:plugin` WIT version it was built against.
    pub wit_version: Option<String>,
    /// JSON Schema of its config (null when it does not load).
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<Value>,
    /// Why it does not load, when it does not.
    pub error: Option<String>,
}

/// Plugins installed on this server, by file.
#[utoipa::path(get, path = "/api/plugins", tag = "fleet",
    params(PageQuery),
    responses((status = 200, body = Page<PluginView>)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn list_plugins(
    _: Auth<Viewer>,
    State(state): State<ApiState>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<PluginView>>> {
    let limit = page.limit()?;
    let items = state
        .plugins()
        .await
        .iter()
        .filter(|p| page.cursor.as_ref().is_none_or(|c| &p.file > c))
        .take(limit as usize + 1)
        .cloned()
        .collect();
    Ok(Json(Page::from_fetched(items, limit, |p| p.file.clone())))
}
