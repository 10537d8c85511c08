//! The error plugins return; its kind tells the host whether to retry.

use std::fmt;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The config is wrong; never retried.
    Config,
    /// Credentials were refused; never retried.
    Auth,
    /// Worth retrying.
    Transient,
    /// Bad data.
    Data,
    /// A bug.
    Internal,
}

/// A typed plugin error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind.
    pub kind: ErrorKind,
    /// What a user should read.
    pub message: String,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    /// The config is wrong.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// The data is bad.
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }
    /// Credentials refused.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }
    /// Worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    /// A bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// The operation is not something this plugin does.
    pub fn unsupported(what: &str) -> Self {
        Self::new(
            ErrorKind::Config,
            format!("{what} is not supported by this plugin"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::data(e.to_string())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl From<sluice_codec::Error> for Error {
    fn from(e: sluice_codec::Error) -> Self {
        let kind = match e.kind {
            sluice_codec::ErrorKind::Config => ErrorKind::Config,
            sluice_codec::ErrorKind::Data => ErrorKind::Data,
            sluice_codec::ErrorKind::Transient => ErrorKind::Transient,
            sluice_codec::ErrorKind::Auth => ErrorKind::Auth,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, e.message)
    }
}

use crate::__wit::sluice::plugin0_2_0::types as wit;

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        let kind = match e.kind {
            wit::ErrorKind::Config => ErrorKind::Config,
            wit::ErrorKind::Auth => ErrorKind::Auth,
            wit::ErrorKind::Transient => ErrorKind::Transient,
            wit::ErrorKind::Data => ErrorKind::Data,
            wit::ErrorKind::Internal => ErrorKind::Internal,
        };
        Error::new(kind, e.message)
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            ErrorKind::Config => wit::ErrorKind::Config,
            ErrorKind::Auth => wit::ErrorKind::Auth,
            ErrorKind::Transient => wit::ErrorKind::Transient,
            ErrorKind::Data => wit::ErrorKind::Data,
            ErrorKind::Internal => wit::ErrorKind::Internal,
        };
        wit::Error {
            kind,
            message: e.message,
        }
    }
}
