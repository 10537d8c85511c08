//! The pipeline's error type.

use std::path::PathBuf;

/// `Result` with the pipeline's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The job file is unreadable or invalid.
    #[error("{file}: {message}")]
    Job {
        /// The job file.
        file: String,
        /// What is wrong, with the line or the path in the file.
        message: String,
    },
    /// No plugin of that name in any plugin directory.
    #[error("{at}: no {kind} plugin `{name}` (not in a sluice.lock; looked for {file} in {}): install it with `sluice plugin install {name}`", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    PluginNotFound {
        /// Where in the job file.
        at: String,
        /// source, filter or sink.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The file name looked for.
        file: String,
        /// The directories searched.
        searched: Vec<PathBuf>,
    },
    /// The plugin's version is not the one the job asks for.
    #[error("{at}: plugin {name} is version {found}, the job asks for {wanted}")]
    Version {
        /// Where in the job file.
        at: String,
        /// Plugin name.
        name: String,
        /// The job's requirement.
        wanted: String,
        /// The plugin's version.
        found: String,
    },
    /// `sluice.lock` pins the plugin, but the bytes here are not the locked
    /// ones (missing, changed, or another version than the job asks for).
    #[error("{at}: plugin {name}: {message}")]
    Locked {
        /// Where in the job file.
        at: String,
        /// Plugin name.
        name: String,
        /// What is wrong and what to run.
        message: String,
    },
    /// A plugin failed (typed error, trap, timeout, out of memory, bad output).
    #[error(transparent)]
    Plugin(#[from] sluice_runtime::Error),
    /// A task failed; says which stream and partition.
    #[error("stream {stream}, partition {partition}: {error}")]
    Task {
        /// The stream.
        stream: String,
        /// The partition id.
        partition: String,
        /// Why (shown in the message, so not also a `source`).
        error: Box<Error>,
    },
    /// A stage produced batches that do not fit the next one.
    #[error("{0}")]
    Schema(String),
    /// Reading or writing saved state failed.
    #[error("state store: {0}")]
    State(String),
    /// Rejected rows could not be written.
    #[error("cannot write rejected rows: {0}")]
    Rejects(String),
    /// Asked to stop ([`crate::Progress::request_stop`]) before every
    /// partition ran; those that ran committed and saved their state.
    #[error("stopped after {done} partitions; {left} left for the next run")]
    Stopped {
        /// Partitions that ran.
        done: usize,
        /// Partitions not started.
        left: usize,
    },
    /// Another task failed first and this one was stopped.
    #[error("cancelled after another task failed")]
    Cancelled,
    /// What a sink committed could not be made visible; its state is saved,
    /// so the next run of the job publishes it.
    #[error(
        "cannot publish what the sink committed ({message}); the next run of the job publishes it"
    )]
    Publish {
        /// What failed.
        message: String,
    },
    /// A panic in the host (a bug in Sluice or a library it calls), caught
    /// so that the task fails instead of the process; what was committed
    /// before it stays, nothing after it is published.
    #[error("internal error in {at}: {message}")]
    Internal {
        /// Where: the reader, the writer, the transfer.
        at: String,
        /// The panic's message.
        message: String,
    },
}

impl Error {
    /// Whether retrying the task may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Plugin(e) => e.is_retryable(),
            Error::Task { error, .. } => error.is_retryable(),
            _ => false,
        }
    }
}
