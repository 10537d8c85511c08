//! The queue's depth as CloudWatch embedded-metric-format log lines: on
//! Fargate, the awslogs driver turns them into metrics with no agent, and a
//! target-tracking policy scales the workers on them.

use std::time::Duration;

use serde_json::json;
use sluice_store::Store;
use tokio::sync::watch;

use crate::now_ms;

/// A worker without a heartbeat for this long is not counted.
const ALIVE_MS: i64 = 5 * 60 * 1000;

/// What one line reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueFigures {
    /// Tasks ready to run now.
    pub ready: i64,
    /// Tasks running.
    pub running: i64,
    /// Workers alive and not stopping.
    pub workers: i64,
    /// Seconds the oldest ready task has waited.
    pub oldest_ready_seconds: f64,
}

impl QueueFigures {
    /// Tasks ready or running per live worker: what the autoscaling
    /// tracks. With no worker it is the whole backlog, so a service scaled
    /// to zero scales out.
    pub fn backlog_per_worker(&self) -> f64 {
        (self.ready + self.running) as f64 / self.workers.max(1) as f64
    }
}

/// One EMF line (namespace `Sluice`), with a `Cluster` dimension when given.
pub fn emf_line(at_ms: i64, figures: &QueueFigures, cluster: Option<&str>) -> String {
    let metrics = json!([
        {"Name": "QueueReady", "Unit": "Count"},
        {"Name": "QueueRunning", "Unit": "Count"},
        {"Name": "WorkersAlive", "Unit": "Count"},
        {"Name": "QueueBacklogPerWorker", "Unit": "Count"},
        {"Name": "OldestReadySeconds", "Unit": "Seconds"},
    ]);
    let dimensions = if cluster.is_some() {
        json!([["Cluster"]])
    } else {
        json!([[]])
    };
    let mut line = json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{"Namespace": "Sluice", "Dimensions": dimensions, "Metrics": metrics}],
        },
        "QueueReady": figures.ready,
        "QueueRunning": figures.running,
        "WorkersAlive": figures.workers,
        "QueueBacklogPerWorker": figures.backlog_per_worker(),
        "OldestReadySeconds": figures.oldest_ready_seconds,
    });
    if let Some(cluster) = cluster {
        line["Cluster"] = json!(cluster);
    }
    line.to_string()
}

/// Read the figures from the store.
///
/// # Errors
/// On a store error.
pub async fn queue_figures(store: &Store) -> crate::Result<QueueFigures> {
    let (ready, oldest_ms) = store.queue_depth().await?;
    let workers = store.workers(now_ms() - ALIVE_MS).await?;
    Ok(QueueFigures {
        ready,
        running: workers.iter().map(|w| w.running.len() as i64).sum(),
        workers: workers
            .iter()
            .filter(|w| !w.stopping && w.roles.contains("worker"))
            .count() as i64,
        oldest_ready_seconds: oldest_ms.max(0) as f64 / 1000.0,
    })
}

/// Print an EMF line to stdout every `every` until `shutdown`.
pub async fn publish_emf(
    store: Store,
    every: Duration,
    cluster: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match queue_figures(&store).await {
            Ok(figures) => println!("{}", emf_line(now_ms(), &figures, cluster.as_deref())),
            Err(e) => tracing::warn!(error = %e, "queue metrics: cannot read the queue"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_metrics_and_carries_their_values() {
        let figures = QueueFigures {
            ready: 10,
            running: 6,
            workers: 2,
            oldest_ready_seconds: 1.5,
        };
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(1_700_000_000_000, &figures, Some("prod"))).unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Sluice");
        assert_eq!(declared["Dimensions"], json!([["Cluster"]]));
        for metric in declared["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} has no value");
        }
        assert_eq!(line["QueueBacklogPerWorker"], 8.0);
        assert_eq!(line["Cluster"], "prod");
        let idle = QueueFigures {
            workers: 0,
            ..figures
        };
        assert_eq!(
            idle.backlog_per_worker(),
            16.0,
            "no workers: the whole backlog"
        );
    }
}
