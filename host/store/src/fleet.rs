//! What the fleet looks like now: workers and what they run.

use sqlx::Row;

use crate::{Result, Store};

/// A worker process as it last reported itself.
#[derive(Debug, Clone)]
pub struct WorkerRecord {
    /// Worker id (the owner of its leases).
    pub id: String,
    /// Host name.
    pub host: String,
    /// Roles the process plays (`api,scheduler,worker`).
    pub roles: String,
    /// Started, ms since the epoch.
    pub started_at: i64,
    /// Last heartbeat, ms since the epoch.
    pub heartbeat_at: i64,
    /// Whether it is shutting down (finishing its tasks, taking no more).
    pub stopping: bool,
    /// The tasks it runs now: (task id, attempt id, task name).
    pub running: Vec<(i64, i64, String)>,
}

impl Store {
    /// Workers that sent a heartbeat at or after `since` (ms), newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn workers(&self, since: i64) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(
            "SELECT id, host, roles, started_at, heartbeat_at, stopping FROM workers \
             WHERE heartbeat_at >= $1 ORDER BY heartbeat_at DESC, id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut workers = rows
            .iter()
            .map(|r| {
                Ok(WorkerRecord {
                    id: r.try_get(0)?,
                    host: r.try_get(1)?,
                    roles: r.try_get(2)?,
                    started_at: r.try_get(3)?,
                    heartbeat_at: r.try_get(4)?,
                    stopping: r.try_get::<i64, _>(5)? != 0,
                    running: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let running = sqlx::query(
            "SELECT lease_owner, id, attempt_id, name FROM tasks WHERE state = 'running' \
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &running {
            let owner: Option<String> = r.try_get(0)?;
            if let Some(w) = workers.iter_mut().find(|w| Some(&w.id) == owner.as_ref()) {
                w.running
                    .push((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
            }
        }
        Ok(workers)
    }

    /// Tasks by state, for metrics: (state, count).
    ///
    /// # Errors
    /// On a database error.
    pub async fn task_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, count(*) FROM tasks GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Retries and expired leases so far among the tasks of running
    /// attempts: (retries, lease expiries). Counted through the running
    /// attempts (an index), not the whole history.
    ///
    /// # Errors
    /// On a database error.
    pub async fn running_task_trouble(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(t.retries), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(t.lease_expiries), 0) AS BIGINT) \
             FROM attempts a JOIN tasks t ON t.attempt_id = a.id \
             WHERE a.status = 'running'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// How far behind the scheduler is at `now` (ms): now minus the
    /// earliest due time of an enabled schedule, or 0 when none is due.
    ///
    /// # Errors
    /// On a database error.
    pub async fn scheduler_lag_ms(&self, now: i64) -> Result<i64> {
        let due: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_run_time) FROM schedules WHERE enabled = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(due.map_or(0, |due| (now - due).max(0)))
    }
}
