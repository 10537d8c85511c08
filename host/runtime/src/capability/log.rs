//! `log`: plugin messages become host `tracing` events tagged with the
//! plugin, cut to `exec.max_message_bytes`.

use crate::bindings::log::{Host, Level};
use crate::capability::HostState;
use crate::limits::truncate_message;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        crate::call_log::host_function("log.log");
        let message = truncate_message(message, self.caps.message_bytes);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}
