//! Retention: finished attempts older than a cutoff go, with their tasks,
//! edges, log records and (when nothing is left of them) sessions. In small
//! batches, each its own short transaction, touching only finished rows: the
//! queue's ready and running tasks are never locked by it.

use sqlx::Row;

use crate::dialect::id_list;
use crate::{Result, Store};

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Attempts.
    pub attempts: u64,
    /// Tasks.
    pub tasks: u64,
    /// Sessions left without attempts.
    pub sessions: u64,
}

impl Store {
    /// Remove up to `batch` attempts that finished before `cutoff_ms`, and
    /// what belongs to them. Call until it removes nothing.
    ///
    /// # Errors
    /// On a database error (what was removed before it stays removed).
    pub async fn prune_batch(&self, cutoff_ms: i64, batch: i64) -> Result<Pruned> {
        let rows = sqlx::query(
            "SELECT id, session_id FROM attempts WHERE status <> 'running' \
             AND finished_at IS NOT NULL AND finished_at < $1 ORDER BY id LIMIT $2",
        )
        .bind(cutoff_ms)
        .bind(batch.max(1))
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(Pruned::default());
        }
        let mut attempts = Vec::with_capacity(rows.len());
        let mut sessions = Vec::with_capacity(rows.len());
        for r in &rows {
            attempts.push(r.try_get::<i64, _>(0)?);
            sessions.push(r.try_get::<i64, _>(1)?);
        }
        sessions.sort_unstable();
        sessions.dedup();
        let attempts = id_list(&attempts);
        let sessions = id_list(&sessions);
        let mut tx = self.pool.begin().await?;
        let tasks_of = "SELECT id FROM tasks WHERE attempt_id IN {ids:$1}";
        sqlx::query(&self.sql(&format!(
            "DELETE FROM task_edges WHERE upstream IN ({tasks_of}) OR downstream IN ({tasks_of})"
        )))
        .bind(&attempts)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.sql(&format!(
            "DELETE FROM task_logs WHERE task_id IN ({tasks_of})"
        )))
        .bind(&attempts)
        .execute(&mut *tx)
        .await?;
        let tasks = sqlx::query(&self.sql("DELETE FROM tasks WHERE attempt_id IN {ids:$1}"))
            .bind(&attempts)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let removed = sqlx::query(&self.sql("DELETE FROM attempts WHERE id IN {ids:$1}"))
            .bind(&attempts)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let emptied = sqlx::query(&self.sql(
            "DELETE FROM sessions WHERE id IN {ids:$1} \
             AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.session_id = sessions.id)",
        ))
        .bind(&sessions)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Pruned {
            attempts: removed,
            tasks,
            sessions: emptied,
        })
    }

    /// Prune everything that finished before `cutoff_ms`, `batch` attempts
    /// at a time.
    ///
    /// # Errors
    /// On a database error.
    pub async fn prune(&self, cutoff_ms: i64, batch: i64) -> Result<Pruned> {
        let mut total = Pruned::default();
        loop {
            let done = self.prune_batch(cutoff_ms, batch).await?;
            if done.attempts == 0 {
                return Ok(total);
            }
            total.attempts += done.attempts;
            total.tasks += done.tasks;
            total.sessions += done.sessions;
            // Let the queue's own statements in between batches.
            tokio::task::yield_now().await;
        }
    }
}
