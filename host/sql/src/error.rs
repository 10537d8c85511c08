//! Errors of the `sql` capability, classified so the host knows what to
//! retry and what to show.

/// What kind of failure: the same split as the plugin contract's error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong config: a missing table or column, a bad URL, an unknown connection.
    Config,
    /// The database refused the credentials.
    Auth,
    /// Worth retrying: a dropped connection, a terminated backend, a timeout.
    Transient,
    /// The data does not fit: a value out of range, a row the target rejects.
    Data,
    /// Anything else.
    Internal,
}

/// An error from a database, with the statement's purpose in the message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The kind.
    pub kind: ErrorKind,
    /// What happened, naming the connection, table or column.
    pub message: String,
}

impl Error {
    /// A config error.
    pub fn config(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Config,
            message: message.into(),
        }
    }

    /// A data error.
    pub fn data(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Data,
            message: message.into(),
        }
    }

    /// A transient error.
    pub fn transient(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    /// The same error, its message prefixed with what was being done.
    pub fn in_context(self, context: &str) -> Self {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }

    /// Classify a driver error; `context` says what was being done.
    pub fn from_sqlx(context: &str, e: sqlx::Error) -> Self {
        let kind = match &e {
            sqlx::Error::Database(db) => classify_sqlstate(db.code().as_deref().unwrap_or("")),
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => ErrorKind::Transient,
            sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => ErrorKind::Config,
            sqlx::Error::ColumnNotFound(_) | sqlx::Error::RowNotFound => ErrorKind::Config,
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => ErrorKind::Data,
            _ => ErrorKind::Internal,
        };
        Error {
            kind,
            message: format!("{context}: {e}"),
        }
    }
}

/// SQLSTATE classes (shared by PostgreSQL and MySQL/MariaDB where they use
/// standard codes).
fn classify_sqlstate(code: &str) -> ErrorKind {
    match code {
        // invalid_authorization_specification, invalid_password
        "28000" | "28P01" => ErrorKind::Auth,
        // undefined table / column / function / schema, syntax, privileges
        "42P01" | "42703" | "42883" | "3F000" | "42601" | "42501" | "42S02" | "42S22" | "42000" => {
            ErrorKind::Config
        }
        // connection exceptions, operator intervention (terminated backend,
        // shutdown), serialization failures and deadlocks, lock timeouts
        c if c.starts_with("08") || c.starts_with("57") || c.starts_with("40") => {
            ErrorKind::Transient
        }
        "55P03" | "53300" => ErrorKind::Transient,
        // data exceptions, integrity constraints
        c if c.starts_with("22") || c.starts_with("23") => ErrorKind::Data,
        _ => ErrorKind::Internal,
    }
}

/// Results of the `sql` capability.
pub type Result<T, E = Error> = std::result::Result<T, E>;
