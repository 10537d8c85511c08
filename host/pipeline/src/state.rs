//! Where a transfer's saved state and its journal of objects being written
//! live: the [`StateStore`] the caller hands to [`crate::Transfer::run`].
//!
//! State is keyed by the job's name and the transfer's fingerprint (what it
//! reads and writes, see [`crate::Transfer::fingerprint`]), so the same job
//! pointed at another target, or reading another source, starts fresh
//! instead of resuming from state that belongs elsewhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_runtime::{PendingPublish, StagingJournal};

use crate::error::Result;

/// The saved state of one stream, as [`StateStore::load`] finds it.
#[derive(Debug, Clone, Default)]
pub struct SavedState {
    /// Each partition's state, by partition id.
    pub partitions: BTreeMap<String, String>,
    /// Something the user should hear about the state found, e.g. that it
    /// was saved under another config and this run starts fresh.
    pub notice: Option<String>,
    /// Each saved partition's generation: moved on at every save, so a
    /// commit named by the generation it starts from is named the same when
    /// made again after a crash (see [`StateStore::save_committed`]).
    pub generations: BTreeMap<String, i64>,
}

/// An object some earlier run was writing when it died: left behind until
/// a later run of the same job discards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The store it is in ([`sluice_runtime::ObjectStore::location`]).
    pub location: String,
    /// What the store needs to discard it.
    pub token: String,
    /// For an object whose commit saved its state but that was not
    /// published yet: what publishing it needs (the token and its path).
    /// The next run publishes it instead of discarding it.
    pub publish: Option<(String, String)>,
}

/// Where partition state is read from and saved to.
pub trait StateStore: Sync {
    /// Every saved partition state of `stream` under `fingerprint`.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn load(&self, fingerprint: &str, stream: &str) -> Result<SavedState>;

    /// Save one partition's state (called after the sink committed).
    ///
    /// # Errors
    /// When the store cannot be written.
    fn save(&self, fingerprint: &str, stream: &str, partition: &str, state: &str) -> Result<()>;

    /// Save a partition's state together with the objects its commit
    /// published (not yet visible): both or neither, so that a process
    /// killed before it publishes them leaves them for the next run to
    /// publish. A store without a journal saves the state alone.
    ///
    /// Returns the partition's generation after the save, when the store
    /// keeps one.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn save_committed(
        &self,
        fingerprint: &str,
        stream: &str,
        partition: &str,
        state: &str,
        pending: &PendingPublish,
    ) -> Result<Option<i64>> {
        let _ = pending;
        self.save(fingerprint, stream, partition, state)
            .map(|()| None)
    }

    /// The generation of a partition that has none saved yet (see
    /// [`SavedState::generations`]), made now and kept, so that its first
    /// commit is named the same when made again after a crash. `None` from
    /// a store that keeps no generations.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn generation(&self, fingerprint: &str, stream: &str, partition: &str) -> Result<Option<i64>> {
        let _ = (fingerprint, stream, partition);
        Ok(None)
    }

    /// The journal the sink's writes are recorded in, if this store keeps
    /// one.
    fn journal(&self) -> Option<Arc<dyn StagingJournal>> {
        None
    }

    /// Objects that earlier runs of this job left half-written and that no
    /// live process owns: the transfer discards them before it starts.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn orphans(&self) -> Result<Vec<Orphan>> {
        Ok(Vec::new())
    }
}

/// A store that remembers nothing: every run is a full refresh.
pub struct NoState;

impl StateStore for NoState {
    fn load(&self, _fingerprint: &str, _stream: &str) -> Result<SavedState> {
        Ok(SavedState::default())
    }
    fn save(
        &self,
        _fingerprint: &str,
        _stream: &str,
        _partition: &str,
        _state: &str,
    ) -> Result<()> {
        Ok(())
    }
}
