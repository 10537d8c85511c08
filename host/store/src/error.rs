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

impl Error {
    /// The database's SQLSTATE, when the database refused the query.
    fn sqlstate(&self) -> Option<String> {
        match self {
            Error::Query(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// Another transaction got in the way (a deadlock, a serialization
    /// failure): running the same transaction again is the remedy.
    pub fn is_contention(&self) -> bool {
        matches!(self.sqlstate().as_deref(), Some("40P01" | "40001"))
    }

    /// The database refused a value's text (a NUL byte, an encoding it
    /// cannot hold): the caller's input is at fault, not the store.
    pub fn is_invalid_text(&self) -> bool {
        matches!(self.sqlstate().as_deref(), Some("22021" | "22P05"))
    }
}

/// Run a short transaction again, a few times, when another one got in
/// its way: PostgreSQL picks a deadlock's victim, and the victim retries.
pub(crate) async fn retry_contention<T, F, Fut>(mut run: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0u64;
    loop {
        match run().await {
            Err(e) if e.is_contention() && tries < 5 => {
                tries += 1;
                tracing::debug!(error = %e, tries, "store: transaction retried");
                tokio::time::sleep(std::time::Duration::from_millis(5 * tries)).await;
            }
            other => return other,
        }
    }
}
