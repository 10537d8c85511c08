//! Plugin instances: one sandboxed store each, with typed calls.
//!
//! Every call sets a fresh epoch deadline, and every failure becomes an
//! [`Error`] that names the plugin and the call: a typed plugin error, a
//! trap, a timeout or out-of-memory.

mod filter;
mod sink;
mod source;

use arrow::record_batch::RecordBatch;
use wasmtime::Store;
use wasmtime::component::{Resource, ResourceAny};

use crate::batch::Batch;
use crate::bindings::types;
use crate::capability::HostState;
use crate::error::{Error, Result};
use crate::limits::{Limits, setting, within};
use crate::plugin::{Plugin, deadline_ticks};

pub use filter::{FilterInstance, Transformer};
pub use sink::{CommitInfo, Committed, SinkInstance, SinkWriter};
pub use source::{Partition, ReaderEvent, SourceInstance, SourceReader, StreamInfo, SyncMode};

/// Classify a wasmtime error from a call into the plugin.
pub(crate) fn call_error(
    plugin: &str,
    call: &str,
    e: wasmtime::Error,
    store: &mut Store<HostState>,
    limits: &Limits,
) -> Error {
    if let Some(message) = store.data_mut().host_panic.take() {
        return Error::HostPanic {
            plugin: plugin.into(),
            call: call.into(),
            message,
        };
    }
    if store.data().limiter.hit {
        return Error::OutOfMemory {
            plugin: plugin.into(),
            call: call.into(),
            limit_mib: (limits.memory_bytes >> 20) as u64,
        };
    }
    let trap = e.downcast_ref::<wasmtime::Trap>().copied();
    if trap == Some(wasmtime::Trap::Interrupt)
        || e.downcast_ref::<crate::capability::blocking::DeadlineExceeded>()
            .is_some()
    {
        return Error::Timeout {
            plugin: plugin.into(),
            call: call.into(),
            seconds: limits.call_timeout.as_secs_f64(),
            setting: limits.timeout_setting,
        };
    }
    let detail = format!("{e:?}");
    if detail.contains("fuel allocated for hostcalls has been exhausted") {
        return Error::InvalidOutput {
            plugin: plugin.into(),
            call: call.into(),
            message: format!(
                "it handed the host more than {} bytes in one call: a batch may take up to \
                 exec.max_batch_mb, a message exec.max_message_bytes, a schema \
                 exec.max_schema_bytes, a checkpoint exec.max_state_bytes",
                limits.caps.per_call_bytes()
            ),
        };
    }
    let printed = store.data().stderr.text();
    let what = if trap == Some(wasmtime::Trap::StackOverflow)
        || shadow_stack_overflow(trap, &detail)
        || (trap == Some(wasmtime::Trap::MemoryOutOfBounds) && deep_recursion(&e))
    {
        "stack overflow: the plugin recursed deeper than its stack allows (a Rust plugin's \
         stack is 1 MiB unless built with a larger `-C link-arg=-zstack-size=…`)\n"
    } else {
        ""
    };
    let message = if printed.is_empty() {
        format!("{what}{detail}")
    } else {
        format!("{what}{printed}\n{detail}")
    };
    Error::Trap {
        plugin: plugin.into(),
        call: call.into(),
        message: crate::limits::truncate_message(message, limits.caps.message_bytes),
    }
}

/// Whether an out-of-bounds access is a shadow stack running out.
///
/// Languages compiled to wasm without their own stack checks (Rust, C)
/// keep their stack at the bottom of linear memory, growing down: running
/// out of it wraps the stack pointer to the top of the 32-bit address
/// space, far past the end of any memory the cap allows. wasmtime names
/// the faulting address; an address that high is such a wrap.
fn shadow_stack_overflow(trap: Option<wasmtime::Trap>, detail: &str) -> bool {
    if trap != Some(wasmtime::Trap::MemoryOutOfBounds) {
        return false;
    }
    let Some(at) = detail.split("memory fault at wasm address ").nth(1) else {
        return false;
    };
    let hex: String = at
        .trim_start_matches("0x")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16).is_ok_and(|addr| (0xffff_0000..=0xffff_ffff).contains(&addr))
}

/// Whether the trap happened at the bottom of a deep recursion: every frame
/// of the (capped) backtrace is one of a few functions calling themselves.
/// With a shadow stack that runs out, that is how a Rust plugin's stack
/// overflow shows, when wasmtime cannot name the faulting address.
fn deep_recursion(e: &wasmtime::Error) -> bool {
    let Some(trace) = e.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return false;
    };
    let frames = trace.frames();
    if frames.len() < 16 {
        return false;
    }
    let mut counts = std::collections::HashMap::new();
    for f in frames {
        *counts.entry(f.func_index()).or_insert(0usize) += 1;
    }
    counts.values().copied().max().unwrap_or(0) * 4 >= frames.len() * 3
}

/// Set the deadline of a call about to start: for the wasm it runs (epoch
/// ticks) and for the waiting WASI calls it makes.
pub(crate) fn arm(store: &mut Store<HostState>, limits: &Limits, now: std::time::Instant) {
    store.set_epoch_deadline(deadline_ticks(limits.call_timeout));
    let data = store.data_mut();
    data.deadline = Some(now + limits.call_timeout);
    data.host_panic = None;
}

/// The state every instance kind shares: plugin, store, limits.
pub(crate) struct Sandbox {
    plugin: Plugin,
    pub(super) store: Store<HostState>,
    pub(super) limits: Limits,
    /// Set after a trap: the instance must not be called again.
    poisoned: bool,
}

impl Sandbox {
    pub(crate) fn new(plugin: Plugin, store: Store<HostState>, limits: Limits) -> Self {
        Sandbox {
            plugin,
            store,
            limits,
            poisoned: false,
        }
    }

    /// Look up an export's functions in the new instance.
    pub(crate) fn load<G>(
        &mut self,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<G>,
    ) -> Result<G> {
        f(&mut self.store)
            .map_err(|e| call_error(self.plugin.name(), "load", e, &mut self.store, &self.limits))
    }

    /// Run one call into the plugin under a fresh deadline. A panic in
    /// the host during the call (in a host capability, or in wasmtime
    /// itself) fails the call and poisons the instance.
    pub(super) fn call<T>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<std::result::Result<T, types::Error>>,
    ) -> Result<T> {
        if self.poisoned {
            return Err(Error::Trap {
                plugin: self.plugin.name().into(),
                call: call.into(),
                message: "the instance failed earlier and cannot be used".into(),
            });
        }
        let started = std::time::Instant::now();
        crate::call_log::export(self.plugin.info().kind.as_str(), call);
        arm(&mut self.store, &self.limits, started);
        let returned = crate::panic::catch(|| f(&mut self.store));
        self.plugin
            .call_times()
            .record(self.plugin.name(), call, started.elapsed());
        let returned = match returned {
            Ok(returned) => returned,
            Err(message) => {
                self.poisoned = true;
                let message = self.store.data_mut().host_panic.take().unwrap_or(message);
                return Err(Error::HostPanic {
                    plugin: self.plugin.name().into(),
                    call: call.into(),
                    message,
                });
            }
        };
        // A host function panicked and told the guest: the call fails,
        // whatever the guest made of the error it got.
        if returned.is_ok()
            && let Some(message) = self.store.data_mut().host_panic.take()
        {
            self.poisoned = true;
            return Err(Error::HostPanic {
                plugin: self.plugin.name().into(),
                call: call.into(),
                message,
            });
        }
        match returned {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::Plugin {
                plugin: self.plugin.name().into(),
                call: call.into(),
                kind: e.kind.into(),
                message: crate::limits::truncate_message(e.message, self.limits.caps.message_bytes),
            }),
            Err(e) => {
                self.poisoned = true;
                Err(call_error(
                    self.plugin.name(),
                    call,
                    e,
                    &mut self.store,
                    &self.limits,
                ))
            }
        }
    }

    pub(super) fn invalid(&self, call: &str, message: impl Into<String>) -> Error {
        Error::InvalidOutput {
            plugin: self.plugin.name().into(),
            call: call.into(),
            message: message.into(),
        }
    }

    /// Move a batch into the store's table so it can be passed to the guest.
    pub(super) fn lend(&mut self, batch: RecordBatch) -> Result<Resource<Batch>> {
        self.store
            .data_mut()
            .table
            .push(Batch(batch))
            .map_err(|e| self.invalid("batch", e.to_string()))
    }

    /// Take back a batch the guest returned.
    pub(super) fn take(&mut self, call: &str, handle: Resource<Batch>) -> Result<RecordBatch> {
        self.store
            .data_mut()
            .table
            .delete(handle)
            .map(|b| b.0)
            .map_err(|e| self.invalid(call, format!("bad batch handle: {e}")))
    }

    /// Drop a guest resource (its destructor runs in the guest), unless
    /// the instance failed or this thread is unwinding from a panic: then
    /// nothing more runs in it, and the store goes with the instance.
    pub(super) fn drop_resource(&mut self, resource: ResourceAny) {
        if self.poisoned || std::thread::panicking() {
            return;
        }
        arm(&mut self.store, &self.limits, std::time::Instant::now());
        let dropped = crate::panic::catch(|| resource.resource_drop(&mut self.store));
        if !matches!(dropped, Ok(Ok(()))) {
            self.poisoned = true;
        }
    }

    /// Refuse output names (files, tables) over the name cap.
    pub(super) fn outputs(&self, call: &str, outputs: &[String]) -> Result<()> {
        for o in outputs {
            self.cap(
                call,
                within(
                    "an output name",
                    o.len(),
                    self.limits.caps.name_bytes,
                    setting::NAME,
                ),
            )?;
        }
        Ok(())
    }

    /// Refuse output over a cap: `within`'s message as an invalid output.
    pub(super) fn cap(&self, call: &str, checked: std::result::Result<(), String>) -> Result<()> {
        checked.map_err(|message| self.invalid(call, message))
    }
}

// The pipeline moves readers, transformers and writers to task threads.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<SourceReader>();
    is_send::<Transformer>();
    is_send::<SinkWriter>();
};
