//! The fleet side of Sluice: workers that run tasks from the queue, the
//! scheduler that starts sessions, and workflows run in place.
//!
//! Arrows point one way: this crate uses the pipeline (to run transfers)
//! and the store (for the queue); the CLI uses this crate.

mod archive;
mod embedded;
mod error;
mod execute;
mod launch;
mod logs;
mod metrics;
mod operate;
mod project;
mod queue_metrics;
mod retention;
mod row_loop;
mod scheduler;
mod state;
mod worker;

pub use archive::{ArchiveError, MAX_ENTRIES, MAX_UNPACKED_BYTES, pack, unpack};
pub use embedded::{InPlace, run_in_place};
pub use error::{Error, Result};
pub use execute::Executor;
pub use launch::{Launch, SessionTime, push_project, start_workflow};
pub use logs::{LogSink, read_log};
pub use metrics::{WorkerMetrics, label_value};
pub use operate::{
    Backfill, backfill, retry_attempt, schedule_of, set_schedule_enabled, skip_schedule,
    start_latest,
};
pub use project::{ProjectFiles, read_dir};
pub use queue_metrics::{QueueFigures, emf_line, publish_emf, queue_figures};
pub use retention::{PRUNE_BATCH, enforce_retention};
pub use scheduler::{Scheduler, now_ms};
pub use state::{StoreState, local_owner};
pub use worker::{Worker, WorkerConfig, worker_id};
