//! One error shape for every route: a stable code a program can match on,
//! and a message a person can act on.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// `Result` with the API's [`ApiError`].
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: `unauthenticated`, `forbidden`, `csrf`, `locked`, `not_found`,
    /// `conflict`, `invalid`, `unavailable`, `internal`.
    pub code: String,
    /// For a person.
    pub message: String,
}

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// No credentials, or ones that are not valid.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// Valid credentials whose role is too low.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A cookie-authenticated change without the session's CSRF token.
    pub fn csrf() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "missing or wrong X-CSRF-Token header for this session",
        )
    }

    /// Too many failed sign-ins: try again after `secs`.
    pub fn locked(secs: u64) -> ApiError {
        ApiError {
            retry_after_secs: Some(secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "locked",
                format!("too many failed sign-ins; try again in {} s", secs.max(1)),
            )
        }
    }

    /// No such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// It exists already, or is in a state that forbids the change.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// A request that cannot be done as asked.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// A dependency (the database, the secret key) is not there.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The server's fault; the details go to the log, not the caller.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "api: internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<sluice_store::Error> for ApiError {
    fn from(e: sluice_store::Error) -> ApiError {
        use sluice_store::Error as E;
        match e {
            E::NotFound(_) => ApiError::not_found(e.to_string()),
            E::Conflict(_) => ApiError::conflict(e.to_string()),
            E::Key(_) => ApiError::unavailable(e.to_string()),
            E::Open { .. } => ApiError::unavailable(e.to_string()),
            ref q if q.is_invalid_text() => {
                ApiError::invalid("a value holds text the store cannot keep (a NUL byte?)")
            }
            ref q if q.is_contention() => {
                ApiError::unavailable("the store is busy with the same rows; try again")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<sluice_server::Error> for ApiError {
    fn from(e: sluice_server::Error) -> ApiError {
        use sluice_server::Error as E;
        match e {
            E::Store(e) => e.into(),
            E::Workflow(_) | E::Project(_) | E::Invalid(_) => ApiError::invalid(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sluice\""),
            );
        }
        response
    }
}

/// Refuse a NUL byte anywhere in the path or query (percent-encoded or
/// not): no name, cursor or filter holds one, and PostgreSQL cannot store
/// one, so it is the caller's mistake and gets a 422 naming it.
pub async fn refuse_nul(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = request.uri();
    let raw = uri.path_and_query().map_or("", |p| p.as_str());
    if raw.contains('\0') || raw.to_ascii_lowercase().contains("%00") {
        return ApiError::invalid("the path or query holds a NUL byte (%00)").into_response();
    }
    next.run(request).await
}

/// Turn the framework's own refusals under `/api` (a body that does not
/// parse, a path parameter of the wrong type, a method not allowed) into
/// the same JSON shape as every other error, so a client parses one thing.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let code = match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "too_large",
        415 => "unsupported_media_type",
        500..=599 => "internal",
        _ => "invalid",
    };
    let mut text = String::from_utf8_lossy(&bytes).trim().to_string();
    if text.is_empty() {
        text = status.canonical_reason().unwrap_or("error").to_string();
    }
    let mut fixed = ApiError::new(status, code, text).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}
