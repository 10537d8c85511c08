//! The codec's error: a kind (so callers know what to retry) and a message.

use std::fmt;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad options, a missing file, a path outside the root.
    Config,
    /// Bad data: a malformed row, a file that is not what it claims.
    Data,
    /// Worth retrying: an interrupted read, a store that is unreachable.
    Transient,
    /// Refused credentials or permissions.
    Auth,
    /// Anything else.
    Internal,
}

/// A codec or local-storage failure, with a message naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind.
    pub kind: ErrorKind,
    /// What a user should read.
    pub message: String,
}

impl Error {
    /// Bad options or paths.
    pub fn config(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Config,
            message: message.into(),
        }
    }

    /// Worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    /// Refused credentials or permissions.
    pub fn auth(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Auth,
            message: message.into(),
        }
    }

    /// Anything else: a bug or a failure nobody can act on.
    pub fn internal(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    /// Bad data.
    pub fn data(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Data,
            message: message.into(),
        }
    }

    /// An I/O failure on `path`, classified.
    pub fn io(path: &str, e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ErrorKind::Config
            }
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut => ErrorKind::Transient,
            _ => ErrorKind::Internal,
        };
        Error {
            kind,
            message: format!("{path}: {e}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
