//! What a worker adds to the fleet's `/metrics`: tasks started, succeeded
//! and failed, rows and bytes each plugin moved, and how long the calls
//! into plugins took.
//!
//! Increases gather here and go to the store in one transaction with each
//! heartbeat and when the worker stops, never on the path that leases, runs
//! or reports a task. A store outage keeps them for the next flush.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sluice_pipeline::Summary;
use sluice_runtime::{CALL_SECONDS_BUCKETS, CallHistogram, Runtime};
use sluice_store::metric_names::{
    PLUGIN_BYTES, PLUGIN_CALL_SECONDS, PLUGIN_ROWS, TASKS_FAILED, TASKS_STARTED, TASKS_SUCCEEDED,
};
use sluice_store::{MetricDelta, Outcome, Store};

/// A label value as Prometheus text wants it: backslash, quote and newline
/// escaped (a plugin names itself, and its name must not break the page).
pub fn label_value(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Increases not yet in the store.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pending: Mutex<BTreeMap<(String, String), f64>>,
}

impl WorkerMetrics {
    fn add(&self, name: &str, labels: String, value: f64) {
        *self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((name.to_string(), labels))
            .or_default() += value;
    }

    /// A task of `kind` began running here.
    pub fn task_started(&self, kind: &str) {
        self.add(
            TASKS_STARTED,
            format!("kind=\"{}\"", label_value(kind)),
            1.0,
        );
    }

    /// A task of `kind` ended here with `outcome`.
    pub fn task_ended(&self, kind: &str, outcome: &Outcome) {
        let name = match outcome {
            Outcome::Succeeded { .. } => TASKS_SUCCEEDED,
            Outcome::Failed { .. } => TASKS_FAILED,
            Outcome::Released | Outcome::Cancelled => return,
        };
        self.add(name, format!("kind=\"{}\"", label_value(kind)), 1.0);
    }

    /// A transfer committed: what its source, filters and sink moved.
    pub fn transfer_moved(&self, summary: &Summary) {
        let last = summary.plugins.len().saturating_sub(1);
        for (i, (plugin, _)) in summary.plugins.iter().enumerate() {
            let stage = match i {
                0 => "source",
                i if i == last => "sink",
                _ => "filter",
            };
            let labels = format!("plugin=\"{}\",stage=\"{stage}\"", label_value(plugin));
            self.add(PLUGIN_ROWS, labels.clone(), summary.rows as f64);
            let bytes = match stage {
                "source" => summary.bytes_in,
                "sink" => summary.bytes_out,
                _ => continue,
            };
            self.add(PLUGIN_BYTES, labels, bytes as f64);
        }
    }

    /// Plugin call durations drained from the runtime.
    pub fn call_times(&self, histograms: Vec<CallHistogram>) {
        for h in histograms {
            let series = format!(
                "plugin=\"{}\",call=\"{}\"",
                label_value(&h.plugin),
                label_value(&h.call)
            );
            // Prometheus buckets are cumulative: each counts every call at
            // or under its bound.
            let mut cumulative = 0;
            let bounds = CALL_SECONDS_BUCKETS.iter().map(|b| b.to_string());
            for (count, le) in h.buckets.iter().zip(bounds.chain(["+Inf".to_string()])) {
                cumulative += count;
                if cumulative > 0 {
                    let name = format!("{PLUGIN_CALL_SECONDS}_bucket");
                    self.add(&name, format!("{series},le=\"{le}\""), cumulative as f64);
                }
            }
            self.add(
                &format!("{PLUGIN_CALL_SECONDS}_sum"),
                series.clone(),
                h.sum_seconds,
            );
            self.add(
                &format!("{PLUGIN_CALL_SECONDS}_count"),
                series,
                h.count as f64,
            );
        }
    }

    /// Send what gathered (with the runtime's call times) to the store; on
    /// an error it stays for the next flush.
    pub async fn flush(&self, store: &Store, runtime: &Runtime) {
        self.call_times(runtime.call_times().drain());
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.is_empty() {
            return;
        }
        let deltas: Vec<MetricDelta> = taken
            .iter()
            .map(|((name, labels), value)| MetricDelta {
                name: name.clone(),
                labels: labels.clone(),
                value: *value,
            })
            .collect();
        if let Err(e) = store.add_metric_totals(&deltas).await {
            tracing::warn!(error = %e, samples = deltas.len(), "worker: cannot add to the metrics; kept for the next try");
            for ((name, labels), value) in taken {
                self.add(&name, labels, value);
            }
        }
    }

    /// What is waiting to be flushed, for tests: ((name, labels), value).
    pub fn pending(&self) -> Vec<((String, String), f64)> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_the_page() {
        assert_eq!(label_value("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }

    #[test]
    fn histograms_become_cumulative_buckets_with_sum_and_count() {
        let m = WorkerMetrics::default();
        let mut buckets = vec![0; CALL_SECONDS_BUCKETS.len() + 1];
        buckets[0] = 2;
        buckets[3] = 1;
        buckets[CALL_SECONDS_BUCKETS.len()] = 1;
        m.call_times(vec![CallHistogram {
            plugin: "file".into(),
            call: "reader.next".into(),
            buckets,
            count: 4,
            sum_seconds: 100.5,
        }]);
        let pending = m.pending();
        let get = |name: &str, labels: &str| {
            pending
                .iter()
                .find(|((n, l), _)| n == name && l == labels)
                .map(|(_, v)| *v)
        };
        let series = r#"plugin="file",call="reader.next""#;
        let bucket = |le: &str| {
            get(
                "sluice_plugin_call_seconds_bucket",
                &format!("{series},le=\"{le}\""),
            )
        };
        assert_eq!(bucket("0.0001"), Some(2.0));
        assert_eq!(bucket("0.0005"), Some(2.0));
        assert_eq!(bucket("0.005"), Some(3.0));
        assert_eq!(bucket("60"), Some(3.0));
        assert_eq!(bucket("+Inf"), Some(4.0));
        assert_eq!(get("sluice_plugin_call_seconds_count", series), Some(4.0));
        assert_eq!(get("sluice_plugin_call_seconds_sum", series), Some(100.5));
    }

    #[test]
    fn a_transfer_counts_rows_per_stage_and_bytes_at_the_ends() {
        let m = WorkerMetrics::default();
        let report = sluice_runtime::LoadReport {
            from_cache: true,
            elapsed: std::time::Duration::ZERO,
        };
        let summary = Summary {
            rows: 10,
            bytes_in: 300,
            bytes_out: 200,
            plugins: vec![
                ("file".into(), report),
                ("select".into(), report),
                ("postgres".into(), report),
            ],
            ..Summary::default()
        };
        m.transfer_moved(&summary);
        m.task_ended("transfer", &Outcome::Succeeded { summary: None });
        m.task_ended("transfer", &Outcome::Cancelled);
        let pending = m.pending();
        let has = |name: &str, labels: &str, value: f64| {
            assert!(
                pending.contains(&((name.into(), labels.into()), value)),
                "{name}{{{labels}}} {value}: {pending:?}"
            )
        };
        has(PLUGIN_ROWS, r#"plugin="file",stage="source""#, 10.0);
        has(PLUGIN_ROWS, r#"plugin="select",stage="filter""#, 10.0);
        has(PLUGIN_ROWS, r#"plugin="postgres",stage="sink""#, 10.0);
        has(PLUGIN_BYTES, r#"plugin="file",stage="source""#, 300.0);
        has(PLUGIN_BYTES, r#"plugin="postgres",stage="sink""#, 200.0);
        has(TASKS_SUCCEEDED, r#"kind="transfer""#, 1.0);
        assert_eq!(
            pending.len(),
            6,
            "no bytes for a filter, nothing for a cancel: {pending:?}"
        );
    }
}
