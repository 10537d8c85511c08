//! The store's error type.

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be opened or created.
    #[error("cannot open the store at {location}: {source}")]
    Open {
        /// Path or URL (password hidden).
        location: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// No such thing.
    #[error("no {0}")]
    NotFound(String),
    /// It exists already.
    #[error("{0}")]
    Conflict(String),
    /// Stored data that does not parse.
    #[error("bad stored data: {0}")]
    Data(String),
    /// The secret key is missing, malformed or wrong.
    #[error("{0}")]
    Key(String),
}
