//! The server's error type.

/// `Result` with the server [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stops a worker, the scheduler or a launch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sluice_store::Error),
    /// A workflow file is wrong.
    #[error(transparent)]
    Workflow(#[from] sluice_workflow::Error),
    /// A project's files are missing or unreadable.
    #[error("{0}")]
    Project(String),
    /// A request that cannot be done as asked (a bad time, a running
    /// attempt to retry): the caller's mistake, not the server's.
    #[error("{0}")]
    Invalid(String),
}
