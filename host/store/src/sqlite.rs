//! The SQLite backend. Queries live in `queries/sqlite/*.sql`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::{Error, Result, RunRecord, RunStatus};

/// State in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) `path` and bring its schema up to date.
    ///
    /// # Errors
    /// When the file cannot be created or migrated.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let location = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Open {
                location: location.clone(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{location}"))
            .map_err(|source| Error::Open {
                location: location.clone(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open { location, source })?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Record the start of a run.
    ///
    /// # Errors
    /// On a database error.
    pub async fn start_run(&self, job: &str) -> Result<i64> {
        let row = sqlx::query(include_str!("../queries/sqlite/start_run.sql"))
            .bind(job)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// Record how a run ended.
    ///
    /// # Errors
    /// On a database error.
    pub async fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        rows: u64,
        bytes: u64,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(include_str!("../queries/sqlite/finish_run.sql"))
            .bind(status.as_str())
            .bind(rows as i64)
            .bind(bytes as i64)
            .bind(error)
            .bind(run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The saved state of every partition of `stream`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn stream_state(&self, job: &str, stream: &str) -> Result<BTreeMap<String, String>> {
        let rows = sqlx::query(include_str!("../queries/sqlite/stream_state.sql"))
            .bind(job)
            .bind(stream)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect())
    }

    /// Save one partition's state; call only after the sink committed.
    ///
    /// # Errors
    /// On a database error.
    pub async fn save_state(
        &self,
        job: &str,
        stream: &str,
        partition: &str,
        state: &str,
        run: i64,
    ) -> Result<()> {
        sqlx::query(include_str!("../queries/sqlite/save_state.sql"))
            .bind(job)
            .bind(stream)
            .bind(partition)
            .bind(state)
            .bind(run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forget a job's state: the next run is a full refresh.
    ///
    /// # Errors
    /// On a database error.
    pub async fn clear_state(&self, job: &str) -> Result<u64> {
        let done = sqlx::query(include_str!("../queries/sqlite/clear_state.sql"))
            .bind(job)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The latest runs, newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(include_str!("../queries/sqlite/runs.sql"))
            .bind(job)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| RunRecord {
                id: r.get(0),
                job: r.get(1),
                started_at: r.get(2),
                finished_at: r.get(3),
                status: RunStatus::parse(r.get::<&str, _>(4)),
                rows: r.get(5),
                bytes: r.get(6),
                error: r.get(7),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_round_trip_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap();
        let run = store.start_run("job").await.unwrap();
        store.save_state("job", "s", "p0", "10", run).await.unwrap();
        store.save_state("job", "s", "p0", "20", run).await.unwrap();
        store.save_state("job", "s", "p1", "5", run).await.unwrap();
        store
            .save_state("other", "s", "p0", "1", run)
            .await
            .unwrap();
        let state = store.stream_state("job", "s").await.unwrap();
        assert_eq!(state.len(), 2);
        assert_eq!(state["p0"], "20");
        store
            .finish_run(run, RunStatus::Succeeded, 30, 100, None)
            .await
            .unwrap();
        let runs = store.runs(Some("job"), 10).await.unwrap();
        assert_eq!(runs[0].status, RunStatus::Succeeded);
        assert_eq!(runs[0].rows, 30);
        assert_eq!(store.clear_state("job").await.unwrap(), 2);
        assert!(store.stream_state("job", "s").await.unwrap().is_empty());
        assert_eq!(store.stream_state("other", "s").await.unwrap().len(), 1);
        // Reopening runs no migration twice.
        drop(store);
        SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap();
    }
}
