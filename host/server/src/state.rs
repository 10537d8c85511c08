//! The pipeline's state store, backed by the Sluice store: saved partition
//! state, and the journal of objects being written.

use std::sync::Arc;

use sluice_pipeline::{Error, Orphan, Result, SavedState, StateStore};
use sluice_runtime::{PendingPublish, StagingJournal};
use sluice_store::Store;

/// Saves partition state for one run of one job, from a blocking thread.
#[derive(Clone)]
pub struct StoreState {
    /// The store.
    pub store: Store,
    /// A handle on the runtime the store's pool lives on.
    pub handle: tokio::runtime::Handle,
    /// The state key: the job's name (a project's tasks are prefixed).
    pub job: String,
    /// The run being recorded, if any.
    pub run: Option<i64>,
    /// Who is writing: `task:<id>` on a fleet, [`local_owner`] for a run
    /// here. Objects another owner left are discarded only when that
    /// owner is known to be gone.
    pub owner: String,
}

/// The owner of a local run's writes: this process on this machine.
pub fn local_owner() -> String {
    format!("pid:{}@{}", std::process::id(), host_name())
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl StoreState {
    /// Whether the objects `owner` was writing can no longer be finished:
    /// it is this same fleet task (an earlier lease of it), another fleet
    /// task that is no longer running (its attempt failed for good, or was
    /// retried as a new one), or a local process on this machine that is
    /// no longer running.
    fn is_gone(&self, owner: &str) -> bool {
        if owner == self.owner {
            return true;
        }
        if let Some(task) = owner.strip_prefix("task:") {
            return task.parse().is_ok_and(|id| {
                !self
                    .handle
                    .block_on(self.store.task_is_running(id))
                    .unwrap_or(true)
            });
        }
        let Some(local) = owner.strip_prefix("pid:") else {
            return false;
        };
        let Some((pid, host)) = local.split_once('@') else {
            return false;
        };
        // Only procfs can tell: without it, assume the owner lives.
        host == host_name()
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new("/proc").join(pid).exists()
    }
}

impl StateStore for StoreState {
    fn load(&self, fingerprint: &str, stream: &str) -> Result<SavedState> {
        let (partitions, notice) = self
            .handle
            .block_on(self.store.stream_state(&self.job, fingerprint, stream))
            .map_err(|e| Error::State(e.to_string()))?;
        if let Some(notice) = &notice {
            tracing::warn!("{notice}");
        }
        let generations = self
            .handle
            .block_on(self.store.state_generations(&self.job, fingerprint, stream))
            .map_err(|e| Error::State(e.to_string()))?;
        Ok(SavedState {
            partitions,
            notice,
            generations,
        })
    }

    fn save(&self, fingerprint: &str, stream: &str, partition: &str, state: &str) -> Result<()> {
        self.handle
            .block_on(self.store.save_state(
                (&self.job, fingerprint),
                stream,
                partition,
                state,
                self.run,
            ))
            .map_err(|e| Error::State(e.to_string()))
    }

    fn save_committed(
        &self,
        fingerprint: &str,
        stream: &str,
        partition: &str,
        state: &str,
        pending: &PendingPublish,
    ) -> Result<Option<i64>> {
        let objects: Vec<sluice_store::CommittedObject> = pending
            .publications()
            .filter_map(|p| {
                Some(sluice_store::CommittedObject {
                    token: p.token.clone()?,
                    publish_token: p.publish_token.clone()?,
                    path: p.path.clone(),
                })
            })
            .collect();
        self.handle
            .block_on(self.store.save_state_committed(
                (&self.job, fingerprint),
                (stream, partition),
                state,
                self.run,
                &pending.location,
                &objects,
            ))
            .map_err(|e| Error::State(e.to_string()))
            .map(Some)
    }

    fn generation(&self, fingerprint: &str, stream: &str, partition: &str) -> Result<Option<i64>> {
        self.handle
            .block_on(
                self.store
                    .ensure_generation((&self.job, fingerprint), stream, partition),
            )
            .map(Some)
            .map_err(|e| Error::State(e.to_string()))
    }

    fn journal(&self) -> Option<Arc<dyn StagingJournal>> {
        Some(Arc::new(self.clone()))
    }

    fn orphans(&self) -> Result<Vec<Orphan>> {
        let recorded = self
            .handle
            .block_on(self.store.staged_objects(&self.job))
            .map_err(|e| Error::State(e.to_string()))?;
        Ok(recorded
            .into_iter()
            .filter(|r| self.is_gone(&r.owner))
            .map(|r| Orphan {
                publish: match (r.committed, r.publish_token, r.path) {
                    (true, Some(token), Some(path)) => Some((token, path)),
                    _ => None,
                },
                location: r.location,
                token: r.token,
            })
            .collect())
    }
}

impl StagingJournal for StoreState {
    fn started(&self, location: &str, token: &str) -> std::result::Result<(), String> {
        self.handle
            .block_on(
                self.store
                    .staging_started(&self.job, &self.owner, location, token),
            )
            .map_err(|e| e.to_string())
    }

    fn settled(&self, location: &str, token: &str) {
        let settled = self
            .handle
            .block_on(self.store.staging_settled(&self.job, location, token));
        if let Err(e) = settled {
            // Left recorded, it is discarded (already gone) by a later run.
            tracing::warn!("cannot forget a published object {token} in the journal: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn only_owners_that_are_gone_leave_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("state.db"))
            .await
            .unwrap();
        let me = StoreState {
            store: store.clone(),
            handle: tokio::runtime::Handle::current(),
            job: "j".into(),
            run: None,
            owner: "task:7".into(),
        };
        let dead_pid = format!("pid:999999999@{}", host_name());
        let live_pid = local_owner();
        for (owner, token) in [
            ("task:7", "a"),
            ("task:8", "b"),
            (dead_pid.as_str(), "c"),
            (live_pid.as_str(), "d"),
            ("pid:1@another-host", "e"),
        ] {
            store
                .staging_started("j", owner, "/out", token)
                .await
                .unwrap();
        }
        let orphans = tokio::task::spawn_blocking(move || me.orphans().unwrap())
            .await
            .unwrap();
        let tokens: Vec<_> = orphans.iter().map(|o| o.token.as_str()).collect();
        // task:8 is no task the store knows running: gone too.
        assert_eq!(tokens, ["a", "b", "c"]);
    }
}
