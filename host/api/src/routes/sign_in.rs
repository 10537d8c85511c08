//! Signing a browser in and out, and who the caller is.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{
    Auth, Role, SESSION_COOKIE, Via, Viewer, decoy_hash, digest, lockout_ms, now_ms, random_secret,
    verify_password,
};
use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;
use crate::views::time;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// A sign-in, as JSON or as a form.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Who is signed in, and the token their state-changing requests carry.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    /// User name (or `token:<name>`).
    pub user: String,
    /// Role.
    pub role: Role,
    /// Send as `X-CSRF-Token` with every POST, PUT and DELETE made with the
    /// session cookie. Absent for token callers, who need none.
    pub csrf_token: Option<String>,
    /// When the session ends.
    pub expires_at: Option<String>,
}

fn parse_login(headers: &HeaderMap, body: &[u8]) -> ApiResult<LoginRequest> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let parsed = if form {
        serde_urlencoded::from_bytes::<LoginRequest>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<LoginRequest>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError::invalid(format!("sign-in: expected user and password ({e})")))
}

/// Sign in with a user name and password; sets an HttpOnly, SameSite=Strict
/// session cookie. Repeated failures lock the name out for a while.
#[utoipa::path(post, path = "/api/auth/login", tag = "access",
    request_body = LoginRequest,
    responses(
        (status = 200, body = SignedIn, description = "Signed in; the cookie is set"),
        (status = 401, body = crate::error::ErrorBody, description = "Wrong user name or password"),
        (status = 429, body = crate::error::ErrorBody, description = "Locked after repeated failures"),
    ))]
async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let request = parse_login(&headers, &body)?;
    let store = state.store();
    let now = now_ms();
    let locked_until = store.login_locked_until(&request.user).await?;
    if locked_until > now {
        return Err(ApiError::locked(
            ((locked_until - now) as u64).div_ceil(1000),
        ));
    }
    let user = store.user(&request.user).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let password = request.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(user) if ok => user,
        _ => {
            let failures = store
                .record_login_failure(&request.user, now, lockout_ms)
                .await?;
            tracing::warn!(user = %request.user, failures, "api: failed sign-in");
            return Err(ApiError::unauthenticated("wrong user name or password"));
        }
    };
    store.clear_login_failures(&user.name).await?;
    let role = Role::parse(&user.role).map_err(ApiError::internal)?;
    let cookie = random_secret();
    let csrf = random_secret();
    let ttl = state.config().session_ttl;
    let expires = now + ttl.as_millis() as i64;
    store
        .create_web_session(&digest(&cookie), user.id, &csrf, now, expires)
        .await?;
    tracing::info!(user = %user.name, "api: signed in");
    let secure = state.config().secure_cookies.unwrap_or_else(|| {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    });
    let set_cookie = format!(
        "{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let body = SignedIn {
        user: user.name,
        role,
        csrf_token: Some(csrf),
        expires_at: Some(time(expires)),
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie).map_err(ApiError::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Sign this browser out (the session ends on the server too).
#[utoipa::path(post, path = "/api/auth/logout", tag = "access",
    responses((status = 204, description = "Signed out")),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn logout(
    Auth { caller, .. }: Auth<Viewer>,
    State(state): State<ApiState>,
) -> ApiResult<Response> {
    if let Via::Session { hash, .. } = &caller.via {
        state.store().delete_web_session(hash.as_str()).await?;
        tracing::info!(user = %caller.name, "api: signed out");
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sluice_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

/// Who the caller is, with the session's CSRF token.
#[utoipa::path(get, path = "/api/auth/me", tag = "access",
    responses((status = 200, body = SignedIn)),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn me(Auth { caller, .. }: Auth<Viewer>) -> ApiResult<Json<SignedIn>> {
    Ok(Json(SignedIn {
        user: caller.name,
        role: caller.role,
        csrf_token: match caller.via {
            Via::Session { csrf, .. } => Some(csrf),
            _ => None,
        },
        expires_at: None,
    }))
}
