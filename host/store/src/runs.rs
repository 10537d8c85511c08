//! Run history and per-partition stream state: what `sluice run` keeps.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{Result, Store};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Still going (or killed: a run that never finished stays here).
    Running,
    /// Every task committed.
    Succeeded,
    /// A task failed; committed partitions kept their state.
    Failed,
}

impl RunStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            _ => RunStatus::Running,
        }
    }
}

/// One run, as `sluice runs` lists it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// Job name.
    pub job: String,
    /// RFC 3339 start time (UTC).
    pub started_at: String,
    /// RFC 3339 end time, if it ended.
    pub finished_at: Option<String>,
    /// How it ended.
    pub status: RunStatus,
    /// Rows committed.
    pub rows: i64,
    /// Bytes committed.
    pub bytes: i64,
    /// The error, if it failed.
    pub error: Option<String>,
}

impl Store {
    /// Record the start of a run; `task` is the fleet task it runs for.
    ///
    /// # Errors
    /// On a database error.
    pub async fn start_run(&self, job: &str, task: Option<i64>) -> Result<i64> {
        let row = sqlx::query("INSERT INTO runs (job, task_id) VALUES ($1, $2) RETURNING id")
            .bind(job)
            .bind(task)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
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
        sqlx::query(&self.sql(
            "UPDATE runs SET status = $1, rows = $2, bytes = $3, error = $4, \
             finished_at = {now_text} WHERE id = $5",
        ))
        .bind(status.as_str())
        .bind(rows as i64)
        .bind(bytes as i64)
        .bind(error)
        .bind(run)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The saved state of every partition of `stream` of `job` under
    /// `fingerprint`. State saved before fingerprints existed is adopted by
    /// the first fingerprint that asks. When there is none, but there is
    /// state under other fingerprints, the notice says so: the run starts
    /// fresh rather than resume from state that belongs elsewhere.
    ///
    /// # Errors
    /// On a database error.
    pub async fn stream_state(
        &self,
        job: &str,
        fingerprint: &str,
        stream: &str,
    ) -> Result<(BTreeMap<String, String>, Option<String>)> {
        let read = |fp: String| async move {
            let rows = sqlx::query(
                "SELECT partition, state FROM stream_state \
                 WHERE job = $1 AND fingerprint = $2 AND stream = $3 AND state <> ''",
            )
            .bind(job)
            .bind(fp)
            .bind(stream)
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
                .collect::<Result<BTreeMap<_, _>>>()
        };
        let found = read(fingerprint.to_string()).await?;
        if !found.is_empty() {
            return Ok((found, None));
        }
        let legacy = read(String::new()).await?;
        if !legacy.is_empty() {
            sqlx::query(
                "UPDATE stream_state SET fingerprint = $1 \
                 WHERE job = $2 AND fingerprint = '' AND stream = $3",
            )
            .bind(fingerprint)
            .bind(job)
            .bind(stream)
            .execute(&self.pool)
            .await?;
            return Ok((legacy, None));
        }
        let other = sqlx::query(
            "SELECT count(DISTINCT fingerprint), max(updated_at) FROM stream_state \
             WHERE job = $1 AND stream = $2 AND fingerprint <> $3 AND state <> ''",
        )
        .bind(job)
        .bind(stream)
        .bind(fingerprint)
        .fetch_one(&self.pool)
        .await?;
        let others: i64 = other.try_get(0)?;
        let notice = (others > 0).then(|| {
            let last: Option<String> = other.try_get(1).ok().flatten();
            format!(
                "job {job}, stream {stream}: state was saved for another source config or \
                 target ({others} other, last at {}); this config has none yet and starts \
                 fresh (its own state is kept from now on; `state_key:` in the job shares one)",
                last.unwrap_or_default()
            )
        });
        Ok((BTreeMap::new(), notice))
    }

    /// Save one partition's state; call only after the sink committed.
    ///
    /// # Errors
    /// On a database error.
    pub async fn save_state(
        &self,
        key: (&str, &str),
        stream: &str,
        partition: &str,
        state: &str,
        run: Option<i64>,
    ) -> Result<()> {
        self.save_state_committed(key, (stream, partition), state, run, "", &[])
            .await
            .map(|_| ())
    }

    /// Forget a job's state under `fingerprint` (and any saved before
    /// fingerprints): the next run of that config is a full refresh.
    ///
    /// # Errors
    /// On a database error.
    pub async fn clear_state(&self, job: &str, fingerprint: &str) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM stream_state WHERE job = $1 AND (fingerprint = $2 OR fingerprint = '')",
        )
        .bind(job)
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The latest runs, newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT id, job, started_at, finished_at, status, rows, bytes, error FROM runs \
             WHERE ($1 IS NULL OR job = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(job)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RunRecord {
                    id: r.try_get(0)?,
                    job: r.try_get(1)?,
                    started_at: r.try_get(2)?,
                    finished_at: r.try_get(3)?,
                    status: RunStatus::parse(&r.try_get::<String, _>(4)?),
                    rows: r.try_get(5)?,
                    bytes: r.try_get(6)?,
                    error: r.try_get(7)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::{RunStatus, Store};

    #[tokio::test]
    async fn state_round_trip_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("state.db"))
            .await
            .unwrap();
        let id = store.start_run("job", None).await.unwrap();
        let run = Some(id);
        let key = ("job", "fp1");
        store.save_state(key, "s", "p0", "10", run).await.unwrap();
        store.save_state(key, "s", "p0", "20", run).await.unwrap();
        store.save_state(key, "s", "p1", "5", run).await.unwrap();
        store
            .save_state(("other", "fp1"), "s", "p0", "1", run)
            .await
            .unwrap();
        let (state, notice) = store.stream_state("job", "fp1", "s").await.unwrap();
        assert_eq!(state.len(), 2);
        assert_eq!(state["p0"], "20");
        assert!(notice.is_none());
        // Another config of the same job starts fresh, and is told why.
        let (state, notice) = store.stream_state("job", "fp2", "s").await.unwrap();
        assert!(state.is_empty());
        assert!(notice.unwrap().contains("another source config or target"));
        // State from before fingerprints is adopted by the first to ask.
        store
            .save_state(("job", ""), "t", "p0", "7", run)
            .await
            .unwrap();
        let (state, _) = store.stream_state("job", "fp1", "t").await.unwrap();
        assert_eq!(state["p0"], "7");
        let (state, _) = store.stream_state("job", "fp2", "t").await.unwrap();
        assert!(state.is_empty());
        store
            .finish_run(id, RunStatus::Succeeded, 30, 100, None)
            .await
            .unwrap();
        let runs = store.runs(Some("job"), 10).await.unwrap();
        assert_eq!(runs[0].status, RunStatus::Succeeded);
        assert_eq!(runs[0].rows, 30);
        assert!(runs[0].finished_at.is_some());
        assert_eq!(store.clear_state("job", "fp1").await.unwrap(), 3);
        assert!(
            store
                .stream_state("job", "fp1", "s")
                .await
                .unwrap()
                .0
                .is_empty()
        );
        assert_eq!(
            store
                .stream_state("other", "fp1", "s")
                .await
                .unwrap()
                .0
                .len(),
            1
        );
        // Reopening runs no migration twice.
        drop(store);
        Store::open_sqlite(&dir.path().join("state.db"))
            .await
            .unwrap();
    }
}
