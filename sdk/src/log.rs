//! Logs, attributed to the plugin by the host. Always available.
//! Natively (unit tests) they go to stderr.

#[derive(Debug, Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

fn emit(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__wit::sluice::plugin0_2_0::log as wit;
        let level = match level {
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Log at debug level.
pub fn debug(message: &str) {
    emit(Level::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    emit(Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    emit(Level::Warn, message);
}

/// Log at error level.
pub fn error(message: &str) {
    emit(Level::Error, message);
}
