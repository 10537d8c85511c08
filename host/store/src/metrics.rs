//! Fleet-wide counters for `/metrics`: what workers add, summed in one row
//! per sample so every API process serves the same totals.

use sqlx::Row;

use crate::{Result, Store};

/// The names workers add to and `/metrics` serves.
pub mod metric_names {
    /// Tasks a worker began, by kind.
    pub const TASKS_STARTED: &str = "sluice_tasks_started_total";
    /// Tasks that ended in success, by kind.
    pub const TASKS_SUCCEEDED: &str = "sluice_tasks_succeeded_total";
    /// Tries that ended in failure (a retried task counts each time), by kind.
    pub const TASKS_FAILED: &str = "sluice_tasks_failed_total";
    /// Rows each plugin moved in transfers that succeeded, by plugin and stage.
    pub const PLUGIN_ROWS: &str = "sluice_plugin_rows_total";
    /// Bytes a source read or a sink wrote, by plugin and stage.
    pub const PLUGIN_BYTES: &str = "sluice_plugin_bytes_total";
    /// The histogram of plugin call durations, by plugin and call.
    pub const PLUGIN_CALL_SECONDS: &str = "sluice_plugin_call_seconds";
}

/// One sample's increase: `name` and `labels` as Prometheus writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDelta {
    /// Sample name (`sluice_tasks_started_total`, `…_bucket`).
    pub name: String,
    /// Labels as Prometheus text, without braces; empty for none.
    pub labels: String,
    /// How much to add.
    pub value: f64,
}

/// Rows per statement: well under every backend's limit on parameters.
const ROWS_PER_STATEMENT: usize = 200;

impl Store {
    /// Add `deltas` to the totals, all or nothing. Rows are written in
    /// (name, labels) order, so two workers adding at once wait for each
    /// other instead of deadlocking.
    ///
    /// # Errors
    /// On a database error; nothing was added then, so the caller may
    /// offer the same deltas again.
    pub async fn add_metric_totals(&self, deltas: &[MetricDelta]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&MetricDelta> = deltas.iter().collect();
        sorted.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        crate::error::retry_contention(|| self.add_metric_totals_once(&sorted)).await
    }

    async fn add_metric_totals_once(&self, sorted: &[&MetricDelta]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect();
            let sql = format!(
                "INSERT INTO metric_totals (name, labels, value) VALUES {} \
                 ON CONFLICT (name, labels) DO UPDATE SET value = metric_totals.value + excluded.value",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for delta in chunk {
                query = query
                    .bind(delta.name.clone())
                    .bind(delta.labels.clone())
                    .bind(delta.value);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every total, in (name, labels) order: (name, labels, value).
    ///
    /// # Errors
    /// On a database error.
    pub async fn metric_totals(&self) -> Result<Vec<(String, String, f64)>> {
        let rows =
            sqlx::query("SELECT name, labels, value FROM metric_totals ORDER BY name, labels")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(name: &str, labels: &str, value: f64) -> MetricDelta {
        MetricDelta {
            name: name.into(),
            labels: labels.into(),
            value,
        }
    }

    /// Two workers adding the same samples at once: every increase counts.
    async fn concurrent_adds_all_count(store: Store) {
        let adds = |worker: f64| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    let deltas = vec![
                        delta("sluice_tasks_started_total", "", 1.0),
                        delta(
                            "sluice_plugin_rows_total",
                            r#"plugin="file",stage="sink""#,
                            worker,
                        ),
                        delta(
                            "sluice_plugin_rows_total",
                            r#"plugin="generate",stage="source""#,
                            2.5,
                        ),
                    ];
                    store.add_metric_totals(&deltas).await.unwrap();
                }
            })
        };
        let (a, b) = (adds(10.0), adds(100.0));
        a.await.unwrap();
        b.await.unwrap();
        store.add_metric_totals(&[]).await.unwrap();
        let totals = store.metric_totals().await.unwrap();
        assert_eq!(
            totals,
            vec![
                (
                    "sluice_plugin_rows_total".into(),
                    r#"plugin="file",stage="sink""#.into(),
                    25.0 * 110.0
                ),
                (
                    "sluice_plugin_rows_total".into(),
                    r#"plugin="generate",stage="source""#.into(),
                    50.0 * 2.5
                ),
                ("sluice_tasks_started_total".into(), String::new(), 50.0),
            ]
        );
    }

    #[tokio::test]
    async fn totals_add_up_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        concurrent_adds_all_count(Store::open_sqlite(&dir.path().join("m.db")).await.unwrap())
            .await;
    }

    #[tokio::test]
    async fn totals_add_up_on_postgres() {
        if let Some(url) = crate::queue::tests::fresh_postgres("sluice_store_metrics").await {
            concurrent_adds_all_count(Store::open(&url).await.unwrap()).await;
        }
    }
}
