//! The pipeline's state store, backed by the SQLite store.

use std::collections::BTreeMap;

use sluice_pipeline::{Error, Result, StateStore};
use sluice_store::SqliteStore;

/// Saves partition state for one run of one job.
pub struct StoreState {
    pub store: SqliteStore,
    pub handle: tokio::runtime::Handle,
    pub job: String,
    pub run: i64,
}

impl StateStore for StoreState {
    fn load(&self, stream: &str) -> Result<BTreeMap<String, String>> {
        self.handle
            .block_on(self.store.stream_state(&self.job, stream))
            .map_err(|e| Error::State(e.to_string()))
    }

    fn save(&self, stream: &str, partition: &str, state: &str) -> Result<()> {
        self.handle
            .block_on(
                self.store
                    .save_state(&self.job, stream, partition, state, self.run),
            )
            .map_err(|e| Error::State(e.to_string()))
    }
}
