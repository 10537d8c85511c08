//! Runs one transfer: partitions → source readers → filters → sink writers.
//!
//! [`Job`] parses a job file; [`Transfer::prepare`] loads its plugins and
//! validates every config before any data moves; [`Transfer::run`] runs the
//! tasks in parallel over bounded channels and saves each partition's state
//! through a [`StateStore`] only after the sink committed the data it covers.

mod error;
pub mod job;
mod plugins;
mod progress;
mod storage;
mod transfer;

pub use error::{Error, Result};
pub use job::Job;
pub use plugins::PluginDirs;
pub use progress::Progress;
pub use transfer::{NoState, StateStore, Summary, Transfer};
