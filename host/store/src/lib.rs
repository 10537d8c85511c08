//! Sluice's state store: run history and per-partition stream state.
//!
//! The embedded default is SQLite under `.sluice/`, so `sluice run` needs
//! nothing else. State is written only after the sink committed the data it
//! covers, which is what makes a rerun continue where the last one stopped.

mod error;
mod sqlite;

pub use error::{Error, Result};
pub use sqlite::SqliteStore;

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
