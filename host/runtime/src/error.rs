//! The runtime's one error type.

use std::fmt;

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure a plugin reported, mirrored from the WIT `error-kind`
/// so retry logic matches on kinds instead of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The config is wrong; never retried.
    Config,
    /// Credentials were refused; never retried.
    Auth,
    /// Worth retrying.
    Transient,
    /// Bad data (a malformed row, a value that does not fit).
    Data,
    /// A bug in the plugin.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Config => "config error",
            ErrorKind::Auth => "auth error",
            ErrorKind::Transient => "transient error",
            ErrorKind::Data => "data error",
            ErrorKind::Internal => "internal error",
        })
    }
}

/// Everything that can go wrong loading or running a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plugin file could not be read, compiled or linked.
    #[error("plugin {plugin}: cannot load {path}: {message}")]
    Load {
        /// Plugin name or path.
        plugin: String,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The plugin returned a typed error.
    #[error("plugin {plugin}: {call}: {kind}: {message}")]
    Plugin {
        /// Plugin name.
        plugin: String,
        /// The WIT call, e.g. `reader.next`.
        call: String,
        /// The kind the plugin gave.
        kind: ErrorKind,
        /// The plugin's message.
        message: String,
    },
    /// The plugin trapped (a panic, `unreachable`, a bad memory access).
    #[error("plugin {plugin}: {call}: trapped: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The WIT call.
        call: String,
        /// The trap and its wasm backtrace.
        message: String,
    },
    /// The call ran past its deadline (running, sleeping or waiting on
    /// I/O) and was interrupted.
    #[error("plugin {plugin}: {call}: timed out after {seconds}s ({setting})")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The WIT call.
        call: String,
        /// The deadline.
        seconds: f64,
        /// Where the deadline was set (`exec.call_timeout`).
        setting: &'static str,
    },
    /// The host panicked inside a call into the plugin or inside one of
    /// the plugin's calls into a host capability: a bug in Sluice, caught
    /// so that the task fails instead of the process.
    #[error("plugin {plugin}: {call}: internal error: the host panicked: {message}")]
    HostPanic {
        /// Plugin name.
        plugin: String,
        /// The WIT call into the plugin during which it happened.
        call: String,
        /// The panic's message (and the host function it came from).
        message: String,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin {plugin}: {call}: out of memory: the cap is {limit_mib} MiB (exec.memory_mb)")]
    OutOfMemory {
        /// Plugin name.
        plugin: String,
        /// The WIT call.
        call: String,
        /// The cap.
        limit_mib: u64,
    },
    /// The plugin returned something the host refuses: bytes that are not
    /// Arrow IPC, a schema that does not match, an oversized value.
    #[error("plugin {plugin}: {call}: invalid output: {message}")]
    InvalidOutput {
        /// Plugin name.
        plugin: String,
        /// The WIT call.
        call: String,
        /// What was wrong.
        message: String,
    },
    /// The config failed the plugin's JSON Schema, before the plugin saw it.
    #[error("{path}: {message}")]
    Config {
        /// Where in the job file, e.g. `sink.config.format`.
        path: String,
        /// What was expected.
        message: String,
    },
    /// A plugin is of another kind than the job needs it to be.
    #[error("plugin {plugin} is a {actual}, but the job uses it as a {expected}")]
    WrongKind {
        /// Plugin name.
        plugin: String,
        /// What the job needs.
        expected: &'static str,
        /// What `info()` said.
        actual: &'static str,
    },
    /// A file-system error in the runtime itself (cache, plugin files).
    #[error("{context}: {error}")]
    Io {
        /// What the runtime was doing.
        context: String,
        /// The error (shown in the message, so not also a `source`).
        error: std::io::Error,
    },
}

impl Error {
    /// Whether running the same task again might succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Plugin {
                kind: ErrorKind::Transient,
                ..
            }
        )
    }
}
