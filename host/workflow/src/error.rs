//! The workflow crate's error type.

/// `Result` with the workflow [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A workflow that cannot be read, templated or scheduled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not valid YAML or not a valid workflow.
    #[error("{file}: {message}")]
    Invalid {
        /// The workflow file.
        file: String,
        /// What is wrong, with the line or the path in the file.
        message: String,
    },
    /// A `${…}` that names nothing known.
    #[error("{file}: {at}: unknown variable ${{{name}}} (known: {known})")]
    UnknownVariable {
        /// The workflow file.
        file: String,
        /// Where in it.
        at: String,
        /// The variable.
        name: String,
        /// The variables that exist there.
        known: String,
    },
}
