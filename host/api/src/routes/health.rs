//! Liveness, readiness and Prometheus metrics: what a load balancer and a
//! scraper ask.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_store::metric_names;
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
    totals(&mut out, &store.metric_totals().await?);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// The fleet-wide totals workers add to: (family, type, help).
const TOTALS: [(&str, &str, &str); 6] = [
    (
        metric_names::TASKS_STARTED,
        "counter",
        "Tasks workers began running, by kind.",
    ),
    (
        metric_names::TASKS_SUCCEEDED,
        "counter",
        "Tasks that succeeded, by kind.",
    ),
    (
        metric_names::TASKS_FAILED,
        "counter",
        "Tries of tasks that failed (each retry counts), by kind.",
    ),
    (
        metric_names::PLUGIN_ROWS,
        "counter",
        "Rows each plugin moved in transfers that committed, by plugin and stage.",
    ),
    (
        metric_names::PLUGIN_BYTES,
        "counter",
        "Bytes a source plugin read or a sink plugin wrote, by plugin and stage.",
    ),
    (
        metric_names::PLUGIN_CALL_SECONDS,
        "histogram",
        "How long calls into plugins took, by plugin and call.",
    ),
];

/// Counters as stored; histograms with each series' buckets in rising
/// `le` order, then its sum and count, as the text format wants them.
fn totals(out: &mut String, samples: &[(String, String, f64)]) {
    for (family, kind, help) in TOTALS {
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
        if kind == "counter" {
            for (name, labels, value) in samples.iter().filter(|s| s.0 == family) {
                sample(out, name, labels, *value);
            }
            continue;
        }
        let (bucket, sum, count) = (
            format!("{family}_bucket"),
            format!("{family}_sum"),
            format!("{family}_count"),
        );
        // Per series (its labels without `le`): buckets, sum and count.
        #[derive(Default)]
        struct Series<'a> {
            buckets: Vec<(f64, &'a str, f64)>,
            sum: Option<f64>,
            count: Option<f64>,
        }
        let mut series: BTreeMap<&str, Series> = BTreeMap::new();
        for (name, labels, value) in samples {
            if *name == bucket {
                let (base, le) = labels.rsplit_once(",le=\"").unwrap_or(("", labels));
                let le = le.trim_end_matches('"');
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                let s = series.entry(base).or_default();
                s.buckets.push((bound, labels, *value));
            } else if *name == sum {
                series.entry(labels).or_default().sum = Some(*value);
            } else if *name == count {
                series.entry(labels).or_default().count = Some(*value);
            }
        }
        for (base, mut s) in series {
            s.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (_, labels, value) in s.buckets {
                sample(out, &bucket, labels, value);
            }
            for (name, value) in [(&sum, s.sum), (&count, s.count)] {
                if let Some(value) = value {
                    sample(out, name, base, value);
                }
            }
        }
    }
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        sample(out, name, labels, *value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_come_in_rising_le_order_then_sum_and_count() {
        let s =
            |name: &str, labels: &str, value: f64| (name.to_string(), labels.to_string(), value);
        let series = r#"plugin="file",call="reader.next""#;
        // As the store sorts them: by text, so 10 before 5 and +Inf first.
        let samples = vec![
            s(
                "sluice_plugin_call_seconds_bucket",
                &format!("{series},le=\"+Inf\""),
                4.0,
            ),
            s(
                "sluice_plugin_call_seconds_bucket",
                &format!("{series},le=\"0.001\""),
                1.0,
            ),
            s(
                "sluice_plugin_call_seconds_bucket",
                &format!("{series},le=\"10\""),
                3.0,
            ),
            s(
                "sluice_plugin_call_seconds_bucket",
                &format!("{series},le=\"5\""),
                2.0,
            ),
            s("sluice_plugin_call_seconds_count", series, 4.0),
            s("sluice_plugin_call_seconds_sum", series, 12.5),
            s("sluice_tasks_started_total", r#"kind="transfer""#, 7.0),
        ];
        let mut out = String::new();
        totals(&mut out, &samples);
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("sluice_plugin_call"))
            .collect();
        assert_eq!(
            lines,
            [
                r#"sluice_plugin_call_seconds_bucket{plugin="file",call="reader.next",le="0.001"} 1"#,
                r#"sluice_plugin_call_seconds_bucket{plugin="file",call="reader.next",le="5"} 2"#,
                r#"sluice_plugin_call_seconds_bucket{plugin="file",call="reader.next",le="10"} 3"#,
                r#"sluice_plugin_call_seconds_bucket{plugin="file",call="reader.next",le="+Inf"} 4"#,
                r#"sluice_plugin_call_seconds_sum{plugin="file",call="reader.next"} 12.5"#,
                r#"sluice_plugin_call_seconds_count{plugin="file",call="reader.next"} 4"#,
            ]
        );
        assert!(
            out.contains("# TYPE sluice_plugin_call_seconds histogram"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE sluice_tasks_failed_total counter"),
            "{out}"
        );
        assert!(
            out.contains("sluice_tasks_started_total{kind=\"transfer\"} 7\n"),
            "{out}"
        );
    }
}
