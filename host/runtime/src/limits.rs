//! Sandbox limits for one plugin instance.

use std::time::Duration;

/// How much a plugin instance may use. Set per job under `exec:`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on linear memory, in bytes (default 512 MiB).
    pub memory_bytes: usize,
    /// Deadline for any one call into the plugin (default 60 s), waiting
    /// included: a plugin that sleeps or polls is stopped at it too.
    pub call_timeout: Duration,
    /// Where `call_timeout` was set, for the message a timeout gives
    /// (`exec.call_timeout`).
    pub timeout_setting: &'static str,
    /// Caps on what the plugin hands back.
    pub caps: OutputCaps,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            call_timeout: Duration::from_secs(60),
            timeout_setting: "exec.call_timeout",
            caps: OutputCaps::default(),
        }
    }
}

/// Byte caps on everything a plugin returns, so a hostile or buggy plugin
/// cannot make the host print, store or hold gigabytes.
///
/// Text shown to people (error and log messages, descriptions) is cut to
/// its cap with a note saying so; what the host keeps or acts on (names,
/// schemas, checkpoint state, batches) is refused over its cap, naming the
/// cap and the `exec:` setting that raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCaps {
    /// Error and log messages, descriptions (`exec.max_message_bytes`,
    /// default 64 KiB): cut beyond.
    pub message_bytes: usize,
    /// Names: of the plugin, streams, partitions, columns, outputs
    /// (`exec.max_name_bytes`, default 4 KiB): refused beyond.
    pub name_bytes: usize,
    /// A schema, or a plugin's config schema (`exec.max_schema_bytes`,
    /// default 16 MiB): refused beyond.
    pub schema_bytes: usize,
    /// One checkpoint's state, or a partition's spec
    /// (`exec.max_state_bytes`, default 16 MiB): refused beyond.
    pub state_bytes: usize,
    /// One batch a plugin builds (`exec.max_batch_mb`, default 512 MiB):
    /// refused beyond.
    pub batch_bytes: usize,
}

impl OutputCaps {
    /// The most a plugin may hand the host in one call: the largest cap,
    /// with room for the rest of the call's values. wasmtime refuses more
    /// before any of it is copied ([`wasmtime::Store::set_hostcall_fuel`]).
    pub(crate) fn per_call_bytes(&self) -> usize {
        [
            self.message_bytes,
            self.name_bytes,
            self.schema_bytes,
            self.state_bytes,
            self.batch_bytes,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .saturating_add(1 << 20)
    }
}

impl Default for OutputCaps {
    fn default() -> Self {
        OutputCaps {
            message_bytes: 64 << 10,
            name_bytes: 4 << 10,
            schema_bytes: 16 << 20,
            state_bytes: 16 << 20,
            batch_bytes: 512 << 20,
        }
    }
}

/// The `exec:` setting that raises each cap, for messages.
pub(crate) mod setting {
    pub(crate) const NAME: &str = "exec.max_name_bytes";
    pub(crate) const SCHEMA: &str = "exec.max_schema_bytes";
    pub(crate) const STATE: &str = "exec.max_state_bytes";
    pub(crate) const BATCH: &str = "exec.max_batch_mb";
    pub(crate) const MESSAGE: &str = "exec.max_message_bytes";
}

/// `text` cut to at most `cap` bytes (on a character boundary), with a
/// note of how long it was and which setting keeps more.
pub fn truncate_message(text: String, cap: usize) -> String {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [cut: {} bytes in all; {} keeps {cap}]",
        &text[..end],
        text.len(),
        setting::MESSAGE
    )
}

/// Refuse `bytes` over `cap`: the message names what, the cap and the
/// setting that raises it.
pub(crate) fn within(what: &str, bytes: usize, cap: usize, setting: &str) -> Result<(), String> {
    if bytes <= cap {
        Ok(())
    } else {
        Err(format!(
            "{what} of {bytes} bytes is over the cap of {cap} bytes ({setting})"
        ))
    }
}

/// Enforces [`Limits::memory_bytes`] and remembers that it did, so a failed
/// growth is reported as out-of-memory rather than as a bare trap.
pub(crate) struct MemoryLimiter {
    pub(crate) max_bytes: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // Trap rather than return -1 from memory.grow: a guest allocator
            // that ignores failure would otherwise fail somewhere unrelated.
            wasmtime::bail!("memory cap of {} bytes reached", self.max_bytes);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_message("short".into(), 10), "short");
        let cut = truncate_message("ééééé".into(), 3);
        assert!(cut.starts_with("é…"), "{cut}");
        assert!(cut.contains("10 bytes in all") && cut.contains(setting::MESSAGE));
        assert!(within("a checkpoint", 5, 4, setting::STATE).is_err());
        assert!(within("a checkpoint", 4, 4, setting::STATE).is_ok());
    }
}
