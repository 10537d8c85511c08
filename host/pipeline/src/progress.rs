//! Live counters a CLI or server reads while a transfer runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters updated by the tasks of one transfer.
#[derive(Debug, Default)]
pub struct Progress {
    /// Rows written to the sink.
    pub rows: AtomicU64,
    /// Rows the sink committed: what stays if the run fails now.
    pub rows_committed: AtomicU64,
    /// Bytes read from storage by the source (compressed size).
    pub bytes_in: AtomicU64,
    /// Tasks finished.
    pub tasks_done: AtomicU64,
    /// Tasks in the run.
    pub tasks_total: AtomicU64,
    /// Set to stop at the next partition boundary: partitions in flight
    /// finish and commit (their state is saved), the rest are left for the
    /// next run. A worker shutting down sets it.
    pub stop: AtomicBool,
}

impl Progress {
    /// Ask the transfer to stop at the next partition boundary.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// A snapshot: (rows, bytes in, tasks done, tasks total).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.rows.load(Ordering::Relaxed),
            self.bytes_in.load(Ordering::Relaxed),
            self.tasks_done.load(Ordering::Relaxed),
            self.tasks_total.load(Ordering::Relaxed),
        )
    }
}
