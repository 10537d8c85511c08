//! Runs one transfer: partitions → source readers → filters → sink writers.
//!
//! [`Job`] parses a job file; [`Transfer::prepare`] loads its plugins and
//! validates every config before any data moves; [`Transfer::run`] runs the
//! tasks in parallel over bounded channels and saves each partition's state
//! through a [`StateStore`] only after the sink committed the data it covers.

mod error;
mod fingerprint;
pub mod job;
mod plugins;
mod progress;
mod state;
mod storage;
mod task;
mod transfer;

pub use error::{Error, Result};
pub use fingerprint::STATE_IGNORES;
pub use job::Job;
pub use plugins::PluginDirs;
pub use progress::Progress;
pub use state::{NoState, Orphan, SavedState, StateStore};
pub use transfer::{Summary, Transfer};
