//! The pipeline's state store, backed by the Sluice store.

use std::collections::BTreeMap;

use sluice_pipeline::{Error, Result, StateStore};
use sluice_store::Store;

/// Saves partition state for one run of one job, from a blocking thread.
pub struct StoreState {
    /// The store.
    pub store: Store,
    /// A handle on the runtime the store's pool lives on.
    pub handle: tokio::runtime::Handle,
    /// The state key: the job's name (a project's tasks are prefixed).
    pub job: String,
    /// The run being recorded, if any.
    pub run: Option<i64>,
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
