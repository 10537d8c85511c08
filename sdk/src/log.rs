//! Logs, attributed to the plugin by the host. Always available.

use crate::__wit::sluice::plugin::log as wit;

/// Log at debug level.
pub fn debug(message: &str) {
    wit::log(wit::Level::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    wit::log(wit::Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    wit::log(wit::Level::Warn, message);
}

/// Log at error level.
pub fn error(message: &str) {
    wit::log(wit::Level::Error, message);
}
