//! Live counters a CLI or server reads while a transfer runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by the tasks of one transfer.
#[derive(Debug, Default)]
pub struct Progress {
    /// Rows written to the sink.
    pub rows: AtomicU64,
    /// Bytes read from storage by the source (compressed size).
    pub bytes_in: AtomicU64,
    /// Tasks finished.
    pub tasks_done: AtomicU64,
    /// Tasks in the run.
    pub tasks_total: AtomicU64,
}

impl Progress {
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
