//! Sluice's REST API: the `api` role of `sluice server`.
//!
//! Every route but sign-in, health and the OpenAPI document needs a caller
//! with a role (viewer, operator, admin), proven by an API token
//! (`Authorization: Bearer`) or a browser session cookie with a CSRF token.
//! The OpenAPI document at `/api/openapi.json` is generated from the same
//! handler attributes the router is built from, and states each route's
//! role as its security scope, so a test can walk every route.

pub mod access;
mod error;
mod page;
pub mod routes;
mod state;
mod ui;
mod views;

use axum::Json;
use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;

pub use access::Role;
pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
pub use page::{Page, PageQuery};
pub use routes::admin::{CreatedToken, create_token, put_user_record};
pub use routes::plugins::PluginView;
pub use routes::workflows::ScheduleView;
pub use state::{ApiConfig, ApiState, PluginLister};
pub use views::{AttemptView, TaskView};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice API",
        description = "Workflows, sessions, attempts, tasks, logs, schedules, secrets and the \
            fleet of a Sluice server. Authenticate with `Authorization: Bearer <token>` \
            (`sluice admin token create`) or a session cookie from `POST /api/auth/login`; \
            each operation's security scope is the least role it needs."
    ),
    components(schemas(ErrorBody, ErrorDetail, Role)),
    tags(
        (name = "runs", description = "Sessions, attempts, tasks and their logs"),
        (name = "projects", description = "Projects, revisions and workflows"),
        (name = "schedules", description = "Schedules: list, enable, disable, backfill, skip"),
        (name = "secrets", description = "Project secrets (write-only values)"),
        (name = "fleet", description = "Workers and the queue"),
        (name = "access", description = "Sign-in, tokens and users"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
struct ApiDoc;

/// The API's router and its OpenAPI document (also served at
/// `/api/openapi.json`).
pub fn router(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::runs::router())
        .merge(routes::workflows::router())
        .merge(routes::secrets::router())
        .merge(routes::fleet::router())
        .merge(routes::admin::router())
        .merge(routes::sign_in::router())
        .merge(routes::health::router())
        .merge(routes::plugins::router())
        .split_for_parts();
    describe_security(&mut doc);
    let served = doc.clone();
    let router = router
        .route(
            "/api/openapi.json",
            get(move || async move { Json(served) }),
        )
        .merge(ui::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn(error::refuse_nul))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state);
    (router, doc)
}

/// The security schemes, and on every secured operation the 401 and 403
/// answers the role check gives (one place, not repeated per handler).
fn describe_security(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token: sluice admin token create --role <role>",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            access::SESSION_COOKIE,
            "The web UI's session, from POST /api/auth/login; state-changing requests \
             also send its X-CSRF-Token",
        ))),
    );
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            for (code, text) in [
                ("400", "The request does not parse"),
                ("404", "No such thing"),
                ("422", "The request cannot be done as asked"),
                (
                    "default",
                    "Any other failure (409 conflict, 413 too large, \
                     429 slow down, 503 unavailable), in the same shape",
                ),
            ] {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(text).into());
            }
            if op.security.is_some() {
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("No valid credentials").into());
                responses.entry("403".into()).or_insert_with(|| {
                    error("The caller's role is too low, or a CSRF token is missing").into()
                });
            }
        }
    }
}

/// Serve the API on `listener` until `shutdown` turns true.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (router, _) = router(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}
