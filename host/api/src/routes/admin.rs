//! Access: API tokens and users. Admins only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_store::{TokenRecord, UserRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Admin, Auth, Role, digest, hash_password, new_token, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::page::{Page, PageQuery};
use crate::state::ApiState;
use crate::views::time;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token_route))
        .routes(routes!(revoke_token))
        .routes(routes!(list_users))
        .routes(routes!(put_user, delete_user))
}

/// A token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Created.
    pub created_at: String,
    /// Stops working.
    pub expires_at: Option<String>,
    /// Last used (to the minute).
    pub last_used_at: Option<String>,
    /// Revoked.
    pub revoked_at: Option<String>,
}

impl TryFrom<TokenRecord> for TokenView {
    type Error = ApiError;
    fn try_from(t: TokenRecord) -> ApiResult<TokenView> {
        Ok(TokenView {
            id: t.id,
            role: Role::parse(&t.role).map_err(ApiError::internal)?,
            name: t.name,
            created_at: time(t.created_at),
            expires_at: t.expires_at.map(time),
            last_used_at: t.last_used_at.map(time),
            revoked_at: t.revoked_at.map(time),
        })
    }
}

/// API tokens, newest first.
#[utoipa::path(get, path = "/api/tokens", tag = "access",
    params(PageQuery),
    responses((status = 200, body = Page<TokenView>)),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn list_tokens(
    _: Auth<Admin>,
    State(state): State<ApiState>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<TokenView>>> {
    let limit = page.limit()?;
    let rows = state.store().tokens(page.id_cursor()?, limit + 1).await?;
    let items = rows
        .into_iter()
        .map(TokenView::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(Page::from_fetched(items, limit, |t| t.id.to_string())))
}

/// A token to make.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// What it is for (`ci`, `grafana`).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Days until it stops working (default: never).
    #[schema(minimum = 1)]
    pub expires_in_days: Option<u32>,
}

/// A new token: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send as `Authorization: Bearer <token>`. Not stored; keep it now.
    pub token: String,
    /// The token's record.
    #[serde(flatten)]
    pub record: TokenView,
}

/// Make a token, returning its secret once.
///
/// The token is random (256 bits) and only its sha256 is stored.
pub async fn create_token(
    state: &ApiState,
    name: &str,
    role: Role,
    expires_in_days: Option<u32>,
) -> ApiResult<CreatedToken> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("name: 1 to 200 characters"));
    }
    if expires_in_days == Some(0) {
        return Err(ApiError::invalid("expires_in_days: at least 1"));
    }
    let token = new_token();
    let now = now_ms();
    let expires = expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
    let store = state.store();
    let id = store
        .create_token(name, role.as_str(), &digest(&token), now, expires)
        .await?;
    Ok(CreatedToken {
        token,
        record: TokenView {
            id,
            name: name.to_string(),
            role,
            created_at: time(now),
            expires_at: expires.map(time),
            last_used_at: None,
            revoked_at: None,
        },
    })
}

/// Make a token; its secret is in this response and nowhere else.
#[utoipa::path(post, path = "/api/tokens", tag = "access",
    request_body = NewToken,
    responses((status = 201, body = CreatedToken)),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn create_token_route(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Json(request): Json<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let created =
        create_token(&state, &request.name, request.role, request.expires_in_days).await?;
    tracing::info!(caller = %caller.name, token = created.record.id, role = %request.role,
        "api: token created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke a token; it stops working at once.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "access",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked")),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn revoke_token(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if !state.store().revoke_token(id, now_ms()).await? {
        return Err(ApiError::not_found(format!("no live token {id}")));
    }
    tracing::info!(caller = %caller.name, token = id, "api: token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// A user of the web UI.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Sign-in name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: String,
}

impl TryFrom<UserRecord> for UserView {
    type Error = ApiError;
    fn try_from(u: UserRecord) -> ApiResult<UserView> {
        Ok(UserView {
            role: Role::parse(&u.role).map_err(ApiError::internal)?,
            name: u.name,
            created_at: time(u.created_at),
        })
    }
}

/// Users by name.
#[utoipa::path(get, path = "/api/users", tag = "access",
    params(PageQuery),
    responses((status = 200, body = Page<UserView>)),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn list_users(
    _: Auth<Admin>,
    State(state): State<ApiState>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<UserView>>> {
    let limit = page.limit()?;
    let rows = state
        .store()
        .users(page.cursor.as_deref(), limit + 1)
        .await?;
    let items = rows
        .into_iter()
        .map(UserView::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(Page::from_fetched(items, limit, |u| u.name.clone())))
}

/// A user's password and role.
#[derive(Deserialize, ToSchema)]
pub struct PutUser {
    /// At least 12 characters.
    #[schema(min_length = 12)]
    pub password: String,
    /// Role.
    pub role: Role,
}

/// The least length of a password.
pub const MIN_PASSWORD: usize = 12;

/// Create a user or set their password and role (signing them out).
pub async fn put_user_record(
    state: &ApiState,
    name: &str,
    password: String,
    role: Role,
) -> ApiResult<()> {
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !name_ok {
        return Err(ApiError::invalid(
            "user name: letters, digits, '_', '-', '.' and '@', at most 100",
        ));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::invalid(format!(
            "password: at least {MIN_PASSWORD} characters"
        )));
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    state
        .store()
        .put_user(name, &hash, role.as_str(), now_ms())
        .await?;
    Ok(())
}

/// Create a user, or set a user's password and role.
#[utoipa::path(put, path = "/api/users/{name}", tag = "access",
    params(("name" = String, Path, description = "User name")),
    request_body = PutUser,
    responses((status = 204, description = "Saved")),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn put_user(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(body): Json<PutUser>,
) -> ApiResult<StatusCode> {
    put_user_record(&state, &name, body.password, body.role).await?;
    tracing::info!(caller = %caller.name, user = %name, role = %body.role, "api: user saved");
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user and sign them out.
#[utoipa::path(delete, path = "/api/users/{name}", tag = "access",
    params(("name" = String, Path, description = "User name")),
    responses((status = 204, description = "Deleted")),
    security(("token" = ["admin"]), ("session" = ["admin"])))]
async fn delete_user(
    Auth { caller, .. }: Auth<Admin>,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store().delete_user(&name).await? {
        return Err(ApiError::not_found(format!("no user {name}")));
    }
    tracing::info!(caller = %caller.name, user = %name, "api: user deleted");
    Ok(StatusCode::NO_CONTENT)
}
