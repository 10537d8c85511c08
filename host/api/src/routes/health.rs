//! Liveness, readiness and Prometheus metrics: what a load balancer and a
//! scraper ask.

use std::fmt::Write as _;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{authenticate, now_ms};
use crate::error::ApiResult;
use crate::routes::fleet::WORKER_ALIVE_MS;
use crate::state::ApiState;

/// These routes with their OpenAPI descriptions.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up (it answers; nothing else is checked).
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready for traffic: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Not ready, and why", body = String, content_type = "text/plain"),
    ))]
async fn readyz(State(state): State<ApiState>) -> Response {
    match state.store().readiness().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")).into_response(),
    }
}

/// Prometheus text format. Needs a viewer token unless the operator made
/// it public (`SLUICE_METRICS_PUBLIC=true`).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain")),
    security(("token" = ["viewer"]), ("session" = ["viewer"])))]
async fn metrics(State(state): State<ApiState>, request: Request) -> ApiResult<Response> {
    if !state.config().metrics_public {
        // Every caller that authenticates is at least a viewer.
        let (parts, _) = request.into_parts();
        authenticate(&parts, &state).await?;
    }
    let store = state.store();
    let mut out = String::new();
    let counts = store.task_counts().await?;
    gauge(
        &mut out,
        "sluice_tasks",
        "Tasks by state.",
        &counts
            .iter()
            .map(|(s, n)| (format!("state=\"{s}\""), *n as f64))
            .collect::<Vec<_>>(),
    );
    let (ready, oldest_ms) = store.queue_depth().await?;
    gauge(
        &mut out,
        "sluice_queue_ready",
        "Tasks ready to run now.",
        &[(String::new(), ready as f64)],
    );
    gauge(
        &mut out,
        "sluice_queue_oldest_ready_seconds",
        "How long the oldest ready task has waited.",
        &[(String::new(), oldest_ms.max(0) as f64 / 1000.0)],
    );
    let workers = store.workers(now_ms() - WORKER_ALIVE_MS).await?;
    let alive = workers.iter().filter(|w| !w.stopping).count();
    gauge(
        &mut out,
        "sluice_workers_alive",
        "Workers with a heartbeat in the last five minutes, not stopping.",
        &[(String::new(), alive as f64)],
    );
    let running: usize = workers.iter().map(|w| w.running.len()).sum();
    gauge(
        &mut out,
        "sluice_tasks_leased",
        "Tasks live workers hold.",
        &[(String::new(), running as f64)],
    );
    let (retries, expiries) = store.running_task_trouble().await?;
    gauge(
        &mut out,
        "sluice_running_task_retries",
        "Retries so far among the tasks of running attempts.",
        &[(String::new(), retries as f64)],
    );
    gauge(
        &mut out,
        "sluice_running_task_lease_expiries",
        "Leases that expired (a worker lost) among the tasks of running attempts.",
        &[(String::new(), expiries as f64)],
    );
    gauge(
        &mut out,
        "sluice_scheduler_lag_seconds",
        "How long the earliest due schedule has waited to fire (0 when none is due).",
        &[(
            String::new(),
            store.scheduler_lag_ms(now_ms()).await? as f64 / 1000.0,
        )],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}
