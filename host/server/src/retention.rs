//! Keep the store from growing without bound: what finished more than the
//! retention period ago is pruned, a batch at a time, every so often.

use std::time::Duration;

use sluice_store::Store;
use tokio::sync::watch;

use crate::now_ms;

/// Attempts removed per transaction: small, so no statement holds locks long.
pub const PRUNE_BATCH: i64 = 200;

/// Prune attempts that finished more than `keep` ago, now and then every
/// `every`, until `shutdown`.
pub async fn enforce_retention(
    store: Store,
    keep: Duration,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let cutoff = now_ms() - keep.as_millis() as i64;
        match store.prune(cutoff, PRUNE_BATCH).await {
            Ok(p) if p.attempts > 0 => tracing::info!(
                attempts = p.attempts,
                tasks = p.tasks,
                sessions = p.sessions,
                "retention: pruned what finished before the retention period"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: pruning failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
