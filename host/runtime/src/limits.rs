//! Sandbox limits for one plugin instance.

use std::time::Duration;

/// How much a plugin instance may use. Set per job under `exec:`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on linear memory, in bytes (default 512 MiB).
    pub memory_bytes: usize,
    /// Deadline for any one call into the plugin (default 60 s).
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            call_timeout: Duration::from_secs(60),
        }
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
