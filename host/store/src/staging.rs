//! The journal of objects being written: a temporary file or a multipart
//! upload is recorded before the first byte goes into it and forgotten once
//! it is published or discarded. What a killed process leaves recorded, a
//! later run of the same job discards (`sluice_pipeline::Transfer::run`).

use sqlx::Row;

use crate::{Result, Store};

/// One object recorded as being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedRecord {
    /// Who was writing it: `task:<id>` on a fleet, `pid:<pid>@<host>` for a
    /// local run.
    pub owner: String,
    /// The store it is in.
    pub location: String,
    /// What the store needs to discard it.
    pub token: String,
    /// Whether the commit it belongs to saved its state: then it is to be
    /// published, with `publish_token` at `path`, not discarded.
    pub committed: bool,
    /// What publishing it needs.
    pub publish_token: Option<String>,
    /// Where it is published.
    pub path: Option<String>,
}

/// An object a commit published, recorded with the state the commit saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedObject {
    /// The token its record was started with.
    pub token: String,
    /// What publishing it needs.
    pub publish_token: String,
    /// Where it is published.
    pub path: String,
}

impl Store {
    /// Save one partition's state and mark the objects its commit
    /// published as committed, in one transaction: a process that dies
    /// before it publishes them leaves them for the next run to publish.
    ///
    /// Returns the partition's generation after the save (see
    /// [`Store::state_generations`]).
    ///
    /// # Errors
    /// On a database error (then neither is saved).
    pub async fn save_state_committed(
        &self,
        key: (&str, &str),
        place: (&str, &str),
        state: &str,
        run: Option<i64>,
        location: &str,
        objects: &[CommittedObject],
    ) -> Result<i64> {
        let (job, fingerprint) = key;
        let (stream, partition) = place;
        let mut tx = self.pool.begin().await?;
        for o in objects {
            sqlx::query(
                "UPDATE staged_objects SET committed = 1, publish_token = $1, path = $2 \
                 WHERE job = $3 AND location = $4 AND token = $5",
            )
            .bind(&o.publish_token)
            .bind(&o.path)
            .bind(job)
            .bind(location)
            .bind(&o.token)
            .execute(&mut *tx)
            .await?;
        }
        let saved = sqlx::query(&self.sql(
            "INSERT INTO stream_state (job, fingerprint, stream, partition, state, run_id, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (job, fingerprint, stream, partition) DO UPDATE SET \
             state = excluded.state, run_id = excluded.run_id, updated_at = {now_text}, \
             generation = stream_state.generation + 1 \
             RETURNING generation",
        ))
        .bind(job)
        .bind(fingerprint)
        .bind(stream)
        .bind(partition)
        .bind(state)
        .bind(run)
        .bind(first_generation())
        .fetch_one(&mut *tx)
        .await?;
        let generation: i64 = saved.try_get(0)?;
        tx.commit().await?;
        Ok(generation)
    }

    /// Each partition's generation under `fingerprint`: moved on by one at
    /// every save, from a random start when the partition is first saved,
    /// so that a commit named by the generation it starts from has the same
    /// name when it is made again after a crash, and no other commit does.
    ///
    /// # Errors
    /// On a database error.
    pub async fn state_generations(
        &self,
        job: &str,
        fingerprint: &str,
        stream: &str,
    ) -> Result<std::collections::BTreeMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT partition, generation FROM stream_state \
             WHERE job = $1 AND fingerprint = $2 AND stream = $3",
        )
        .bind(job)
        .bind(fingerprint)
        .bind(stream)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// A partition's generation, made (with a random start, and no state
    /// yet) when it has none: so that its first commit is named too, and
    /// a run that dies before saving it names it the same next time.
    ///
    /// # Errors
    /// On a database error.
    pub async fn ensure_generation(
        &self,
        key: (&str, &str),
        stream: &str,
        partition: &str,
    ) -> Result<i64> {
        let (job, fingerprint) = key;
        sqlx::query(
            "INSERT INTO stream_state (job, fingerprint, stream, partition, state, generation) \
             VALUES ($1, $2, $3, $4, '', $5) \
             ON CONFLICT (job, fingerprint, stream, partition) DO NOTHING",
        )
        .bind(job)
        .bind(fingerprint)
        .bind(stream)
        .bind(partition)
        .bind(first_generation())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT generation FROM stream_state \
             WHERE job = $1 AND fingerprint = $2 AND stream = $3 AND partition = $4",
        )
        .bind(job)
        .bind(fingerprint)
        .bind(stream)
        .bind(partition)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Record an object `owner` is starting to write for `job`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn staging_started(
        &self,
        job: &str,
        owner: &str,
        location: &str,
        token: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO staged_objects (job, owner, location, token) VALUES ($1, $2, $3, $4)",
        )
        .bind(job)
        .bind(owner)
        .bind(location)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forget an object of `job`: it was published or discarded.
    ///
    /// # Errors
    /// On a database error.
    pub async fn staging_settled(&self, job: &str, location: &str, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM staged_objects WHERE job = $1 AND location = $2 AND token = $3")
            .bind(job)
            .bind(location)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the fleet task `id` is running (leased by a live worker, as
    /// far as the store knows): the objects it records are not orphans.
    ///
    /// # Errors
    /// On a database error.
    pub async fn task_is_running(&self, id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT state FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<String, _>(0)? == "running",
            None => false,
        })
    }

    /// Every object still recorded for `job`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn staged_objects(&self, job: &str) -> Result<Vec<StagedRecord>> {
        let rows = sqlx::query(
            "SELECT owner, location, token, committed, publish_token, path \
             FROM staged_objects WHERE job = $1 ORDER BY id",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StagedRecord {
                    owner: r.try_get(0)?,
                    location: r.try_get(1)?,
                    token: r.try_get(2)?,
                    committed: r.try_get::<i32, _>(3)? != 0,
                    publish_token: r.try_get(4)?,
                    path: r.try_get(5)?,
                })
            })
            .collect()
    }
}

/// Where a new partition's generation starts: random, so that state
/// cleared and saved again never repeats an earlier generation. Leaves
/// headroom below `i64::MAX` for increments.
fn first_generation() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    h.write_u128(nanos);
    (h.finish() >> 2) as i64
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn objects_are_recorded_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("state.db"))
            .await
            .unwrap();
        store
            .staging_started("job", "task:7", "/out", ".a.sluice-1-0")
            .await
            .unwrap();
        store
            .staging_started("job", "task:7", "/out", ".b.sluice-1-1")
            .await
            .unwrap();
        store
            .staging_started("other", "task:8", "/out", ".c.sluice-1-2")
            .await
            .unwrap();
        store
            .staging_settled("job", "/out", ".a.sluice-1-0")
            .await
            .unwrap();
        let left = store.staged_objects("job").await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].token, ".b.sluice-1-1");
        assert_eq!(left[0].owner, "task:7");
        assert!(!left[0].committed);
        // Committed with the state: both in one transaction.
        store
            .save_state_committed(
                ("job", "fp"),
                ("s", "p0"),
                "42",
                None,
                "/out",
                &[super::CommittedObject {
                    token: ".b.sluice-1-1".into(),
                    publish_token: ".b.sluice-1-1".into(),
                    path: "b.csv".into(),
                }],
            )
            .await
            .unwrap();
        let left = store.staged_objects("job").await.unwrap();
        assert!(left[0].committed);
        assert_eq!(left[0].path.as_deref(), Some("b.csv"));
        let (state, _) = store.stream_state("job", "fp", "s").await.unwrap();
        assert_eq!(state["p0"], "42");
    }

    #[tokio::test]
    async fn generations_start_at_random_and_move_on_at_every_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        let key = ("job", "fp");
        // Made before the first save, kept, and hidden from the saved state.
        let g = store.ensure_generation(key, "s", "p0").await.unwrap();
        assert_eq!(store.ensure_generation(key, "s", "p0").await.unwrap(), g);
        let (state, notice) = store.stream_state("job", "fp", "s").await.unwrap();
        assert!(state.is_empty() && notice.is_none(), "{state:?} {notice:?}");
        let saved = store
            .save_state_committed(key, ("s", "p0"), "1", None, "", &[])
            .await
            .unwrap();
        assert_eq!(saved, g + 1);
        let saved = store
            .save_state_committed(key, ("s", "p0"), "2", None, "", &[])
            .await
            .unwrap();
        assert_eq!(saved, g + 2);
        assert_eq!(
            store.state_generations("job", "fp", "s").await.unwrap()["p0"],
            g + 2
        );
        // Cleared and made again: another start.
        store.clear_state("job", "fp").await.unwrap();
        let again = store.ensure_generation(key, "s", "p0").await.unwrap();
        assert_ne!(again, g);
        assert_ne!(again, g + 2);
    }
}
