//! Plugin instances: one sandboxed store each, with typed calls.
//!
//! Every call sets a fresh epoch deadline, and every failure becomes an
//! [`Error`] that names the plugin and the call: a typed plugin error, a
//! trap, a timeout or out-of-memory.

use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_types::columnar::{self, ColumnWise, Failure, OutputColumn, Plan};
use wasmtime::Store;
use wasmtime::component::{Resource, ResourceAny};

use crate::batch::{Batch, decode_schema, encode_schema};
use crate::bindings::{filter, sink, source, types};
use crate::capability::HostState;
use crate::capability::publish::PendingPublish;
use crate::error::{Error, Result};
use crate::limits::{Limits, setting, within};
use crate::plugin::{Plugin, deadline_ticks};

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
    store: Store<HostState>,
    limits: Limits,
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
    fn call<T>(
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

    fn invalid(&self, call: &str, message: impl Into<String>) -> Error {
        Error::InvalidOutput {
            plugin: self.plugin.name().into(),
            call: call.into(),
            message: message.into(),
        }
    }

    /// Move a batch into the store's table so it can be passed to the guest.
    fn lend(&mut self, batch: RecordBatch) -> Result<Resource<Batch>> {
        self.store
            .data_mut()
            .table
            .push(Batch(batch))
            .map_err(|e| self.invalid("batch", e.to_string()))
    }

    /// Take back a batch the guest returned.
    fn take(&mut self, call: &str, handle: Resource<Batch>) -> Result<RecordBatch> {
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
    fn drop_resource(&mut self, resource: ResourceAny) {
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
    fn outputs(&self, call: &str, outputs: &[String]) -> Result<()> {
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
    fn cap(&self, call: &str, checked: std::result::Result<(), String>) -> Result<()> {
        checked.map_err(|message| self.invalid(call, message))
    }
}

/// How a stream can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Everything, every run.
    FullRefresh,
    /// Only what is new since the saved state.
    Incremental,
}

/// A stream a source can read.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// Its name.
    pub name: String,
    /// Its schema, when known before reading.
    pub schema: Option<SchemaRef>,
    /// Primary key columns.
    pub primary_key: Vec<String>,
    /// Cursor columns for incremental reads.
    pub cursor_fields: Vec<String>,
    /// Supported sync modes.
    pub sync_modes: Vec<SyncMode>,
}

/// A slice of a stream read by one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The stream.
    pub stream: String,
    /// Stable id, the key of the partition's saved state.
    pub id: String,
    /// Opaque to the host.
    pub spec: String,
}

/// What a reader yields.
#[derive(Debug)]
pub enum ReaderEvent {
    /// Rows.
    Batch(RecordBatch),
    /// State covering every batch before it.
    Checkpoint(String),
}

/// A source plugin instance for one task.
pub struct SourceInstance {
    sandbox: Sandbox,
    guest: source::Guest,
}

impl SourceInstance {
    pub(crate) fn new(sandbox: Sandbox, guest: source::Guest) -> Self {
        SourceInstance { sandbox, guest }
    }

    /// Validate config and connectivity.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn check(&mut self, config: &str) -> Result<()> {
        let guest = &self.guest;
        self.sandbox.call("check", |s| guest.call_check(s, config))
    }

    /// The streams the source can read.
    ///
    /// # Errors
    /// The plugin's error, a sandbox failure, or a schema that is not IPC.
    pub fn discover(&mut self, config: &str) -> Result<Vec<StreamInfo>> {
        let guest = &self.guest;
        let raw = self
            .sandbox
            .call("discover", |s| guest.call_discover(s, config))?;
        let caps = self.sandbox.limits.caps;
        raw.into_iter()
            .map(|s| {
                self.sandbox.cap(
                    "discover",
                    within(
                        "a stream name",
                        s.name.len(),
                        caps.name_bytes,
                        setting::NAME,
                    ),
                )?;
                self.sandbox.cap(
                    "discover",
                    within(
                        &format!("the schema of stream {}", s.name),
                        s.schema.len(),
                        caps.schema_bytes,
                        setting::SCHEMA,
                    ),
                )?;
                for column in s.primary_key.iter().chain(&s.cursor_fields) {
                    self.sandbox.cap(
                        "discover",
                        within(
                            "a column name",
                            column.len(),
                            caps.name_bytes,
                            setting::NAME,
                        ),
                    )?;
                }
                let schema = if s.schema.is_empty() {
                    None
                } else {
                    Some(
                        decode_schema(&s.schema)
                            .map_err(|e| self.sandbox.invalid("discover", e))?,
                    )
                };
                Ok(StreamInfo {
                    name: s.name,
                    schema,
                    primary_key: s.primary_key,
                    cursor_fields: s.cursor_fields,
                    sync_modes: s
                        .sync_modes
                        .into_iter()
                        .map(|m| match m {
                            source::SyncMode::FullRefresh => SyncMode::FullRefresh,
                            source::SyncMode::Incremental => SyncMode::Incremental,
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// Split `stream` into partitions, given its saved state.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn partitions(
        &mut self,
        config: &str,
        stream: &str,
        state: Option<&str>,
    ) -> Result<Vec<Partition>> {
        let guest = &self.guest;
        let raw = self.sandbox.call("partitions", |s| {
            guest.call_partitions(s, config, stream, state)
        })?;
        let caps = self.sandbox.limits.caps;
        for p in &raw {
            self.sandbox.cap(
                "partitions",
                within(
                    "a stream name",
                    p.stream.len(),
                    caps.name_bytes,
                    setting::NAME,
                ),
            )?;
            self.sandbox.cap(
                "partitions",
                within("a partition id", p.id.len(), caps.name_bytes, setting::NAME),
            )?;
            self.sandbox.cap(
                "partitions",
                within(
                    "a partition spec",
                    p.spec.len(),
                    caps.state_bytes,
                    setting::STATE,
                ),
            )?;
        }
        Ok(raw
            .into_iter()
            .map(|p| Partition {
                stream: p.stream,
                id: p.id,
                spec: p.spec,
            })
            .collect())
    }

    /// Open a reader over one partition; the instance becomes the reader.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn into_reader(
        mut self,
        config: &str,
        partition: &Partition,
        state: Option<&str>,
    ) -> Result<SourceReader> {
        let wit_partition = source::Partition {
            stream: partition.stream.clone(),
            id: partition.id.clone(),
            spec: partition.spec.clone(),
        };
        let guest = &self.guest;
        let handle = self.sandbox.call("reader.open", |s| {
            guest.reader().call_open(s, config, &wit_partition, state)
        })?;
        Ok(SourceReader {
            instance: self,
            handle: Some(handle),
        })
    }
}

/// An open reader over one partition.
pub struct SourceReader {
    instance: SourceInstance,
    handle: Option<ResourceAny>,
}

impl SourceReader {
    /// The next event, or `None` when the partition is done.
    ///
    /// # Errors
    /// The plugin's error, a sandbox failure, or an invalid batch.
    pub fn next_event(&mut self) -> Result<Option<ReaderEvent>> {
        let Some(handle) = self.handle else {
            return Ok(None);
        };
        let guest = &self.instance.guest;
        let event = self
            .instance
            .sandbox
            .call("reader.next", |s| guest.reader().call_next(s, handle))?;
        match event {
            None => Ok(None),
            Some(source::Event::Checkpoint(state)) => {
                let cap = self.instance.sandbox.limits.caps.state_bytes;
                self.instance.sandbox.cap(
                    "reader.next",
                    within("a checkpoint", state.len(), cap, setting::STATE),
                )?;
                Ok(Some(ReaderEvent::Checkpoint(state)))
            }
            Some(source::Event::Batch(batch)) => Ok(Some(ReaderEvent::Batch(
                self.instance.sandbox.take("reader.next", batch)?,
            ))),
        }
    }

    /// Rows skipped as invalid since the last call (`on_invalid: skip`).
    pub fn take_rejects(&mut self) -> Vec<crate::Reject> {
        let log = &self.instance.sandbox.store.data().rejects;
        std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Bytes read from storage through the codec so far (compressed size):
    /// what "input MB/s" is measured in.
    pub fn bytes_read(&self) -> u64 {
        self.instance
            .sandbox
            .store
            .data()
            .bytes_read
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for SourceReader {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.instance.sandbox.drop_resource(handle);
        }
    }
}

/// A filter plugin instance for one task.
pub struct FilterInstance {
    sandbox: Sandbox,
    guest: filter::Guest,
}

impl FilterInstance {
    pub(crate) fn new(sandbox: Sandbox, guest: filter::Guest) -> Self {
        FilterInstance { sandbox, guest }
    }

    /// Open a transformer for batches of `input`; the instance becomes it.
    ///
    /// # Errors
    /// The plugin's error (an unknown column, say) or a sandbox failure.
    pub fn into_transformer(mut self, config: &str, input: &SchemaRef) -> Result<Transformer> {
        let schema = encode_schema(input);
        let guest = &self.guest;
        let handle = self.sandbox.call("transformer.open", |s| {
            guest.transformer().call_open(s, config, &schema)
        })?;
        let raw = self.sandbox.call("transformer.output-schema", |s| {
            guest.transformer().call_output_schema(s, handle).map(Ok)
        })?;
        let cap = self.sandbox.limits.caps.schema_bytes;
        self.sandbox.cap(
            "transformer.output-schema",
            within("the output schema", raw.len(), cap, setting::SCHEMA),
        )?;
        let output = decode_schema(&raw)
            .map_err(|e| self.sandbox.invalid("transformer.output-schema", e))?;
        let plan = self.sandbox.call("transformer.plan", |s| {
            guest.transformer().call_plan(s, handle).map(Ok)
        })?;
        let plan = match plan {
            Some(plan) => Some(
                checked_plan(plan, input, &output)
                    .map_err(|e| self.sandbox.invalid("transformer.plan", e))?,
            ),
            None => None,
        };
        Ok(Transformer {
            instance: self,
            handle: Some(handle),
            output,
            plan,
        })
    }
}

/// A plan from the guest, checked against the schemas it will meet.
fn checked_plan(plan: filter::Plan, input: &SchemaRef, output: &SchemaRef) -> Result<Plan, String> {
    let indexes = |reads: Vec<u32>| reads.into_iter().map(|i| i as usize).collect();
    let plan = Plan {
        keep_reads: plan.keep_reads.map(indexes),
        compute_reads: indexes(plan.compute_reads),
        columns: plan
            .columns
            .into_iter()
            .map(|c| match c {
                filter::OutputColumn::Input(i) => OutputColumn::Input(i as usize),
                filter::OutputColumn::Computed(k) => OutputColumn::Computed(k as usize),
            })
            .collect(),
    };
    plan.check(input.fields().len(), output.fields().len())?;
    for (column, field) in plan.columns.iter().zip(output.fields()) {
        if let OutputColumn::Input(i) = *column {
            let passed = input.field(i).data_type();
            if passed != field.data_type() {
                return Err(format!(
                    "output column `{}` is input column {i} passed through, but its type {} is not the input's {passed}",
                    field.name(),
                    field.data_type()
                ));
            }
        }
    }
    Ok(plan)
}

/// The rows a selection keeps, from the guest's bitmap.
fn keep_bits(bytes: Vec<u8>, rows: usize) -> Result<BooleanBuffer, String> {
    if bytes.len() < rows.div_ceil(8) {
        return Err(format!(
            "`keep` returned {} bytes, {rows} rows need {}",
            bytes.len(),
            rows.div_ceil(8)
        ));
    }
    Ok(BooleanBuffer::new(Buffer::from_vec(bytes), 0, rows))
}

/// A column-wise transformer's two calls, for [`columnar::run`].
struct Questions<'a> {
    instance: &'a mut FilterInstance,
    handle: ResourceAny,
}

impl ColumnWise for Questions<'_> {
    type Error = crate::Error;

    fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer> {
        const CALL: &str = "transformer.keep";
        let rows = columns.num_rows();
        let input = self.instance.sandbox.lend(columns)?;
        let (guest, handle) = (&self.instance.guest, self.handle);
        let bytes = self
            .instance
            .sandbox
            .call(CALL, |s| guest.transformer().call_keep(s, handle, input))?;
        keep_bits(bytes, rows).map_err(|e| self.instance.sandbox.invalid(CALL, e))
    }

    fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch> {
        const CALL: &str = "transformer.compute";
        let input = self.instance.sandbox.lend(rows)?;
        let (guest, handle) = (&self.instance.guest, self.handle);
        let computed = self
            .instance
            .sandbox
            .call(CALL, |s| guest.transformer().call_compute(s, handle, input))?;
        self.instance.sandbox.take(CALL, computed)
    }
}

/// An open transformer.
pub struct Transformer {
    instance: FilterInstance,
    handle: Option<ResourceAny>,
    output: SchemaRef,
    /// Set for a column-wise filter: batches go through `select`.
    plan: Option<Plan>,
}

impl Transformer {
    /// The schema of every batch it returns.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    fn collect(&mut self, call: &str, handles: Vec<Resource<Batch>>) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::with_capacity(handles.len());
        let mut handles = handles.into_iter();
        while let Some(h) = handles.next() {
            let batch = self.instance.sandbox.take(call, h)?;
            match crate::batch::conform(batch, &self.output) {
                Ok(batch) => out.push(batch),
                Err(e) => {
                    for rest in handles.by_ref() {
                        let _ = self.instance.sandbox.take(call, rest);
                    }
                    return Err(self.instance.sandbox.invalid(
                        call,
                        format!("a batch does not fit the declared output schema: {e}"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Transform one batch into zero or more.
    ///
    /// # Errors
    /// The plugin's error, a sandbox failure, or an invalid batch.
    pub fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        if self.plan.is_some() {
            return self.column_wise(batch);
        }
        let handle = self.handle.expect("open until dropped");
        let input = self.instance.sandbox.lend(batch)?;
        let guest = &self.instance.guest;
        let handles = self.instance.sandbox.call("transformer.process", |s| {
            guest.transformer().call_process(s, handle, input)
        })?;
        self.collect("transformer.process", handles)
    }

    /// A column-wise filter: ask it which rows to keep and what it computes
    /// (sending each question only the columns it reads), and assemble the
    /// output here.
    fn column_wise(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let plan = self.plan.as_ref().expect("called for column-wise filters");
        let handle = self.handle.expect("open until dropped");
        let mut guest = Questions {
            instance: &mut self.instance,
            handle,
        };
        let out = columnar::run(&batch, plan, &self.output, &mut guest).map_err(|f| match f {
            Failure::Filter(e) => e,
            Failure::Invalid { call, message } => self
                .instance
                .sandbox
                .invalid(&format!("transformer.{call}"), message),
        })?;
        Ok(if out.num_rows() == 0 {
            Vec::new()
        } else {
            vec![out]
        })
    }

    /// Emit what the filter held back.
    ///
    /// # Errors
    /// As [`Transformer::process`].
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        if self.plan.is_some() {
            return Ok(Vec::new());
        }
        let handle = self.handle.expect("open until dropped");
        let guest = &self.instance.guest;
        let handles = self.instance.sandbox.call("transformer.finish", |s| {
            guest.transformer().call_finish(s, handle)
        })?;
        self.collect("transformer.finish", handles)
    }
}

impl Drop for Transformer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.instance.sandbox.drop_resource(handle);
        }
    }
}

/// What a sink reports on commit.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    /// Rows made durable.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Where they went.
    pub outputs: Vec<String>,
}

/// A commit: what it reports, and what it published, held back until the
/// pipeline has saved the state the commit covers (then
/// [`PendingPublish::publish`]), so a process killed in between can never
/// leave files whose rows are read again.
#[derive(Debug)]
pub struct Committed {
    /// What the sink reported.
    pub info: CommitInfo,
    /// The objects it published, not yet visible.
    pub pending: PendingPublish,
}

/// A sink plugin instance for one task.
pub struct SinkInstance {
    sandbox: Sandbox,
    guest: sink::Guest,
}

impl SinkInstance {
    pub(crate) fn new(sandbox: Sandbox, guest: sink::Guest) -> Self {
        SinkInstance { sandbox, guest }
    }

    /// Validate config and connectivity.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn check(&mut self, config: &str) -> Result<()> {
        let guest = &self.guest;
        self.sandbox.call("check", |s| guest.call_check(s, config))
    }

    /// Before any writer of `stream` opens in a run; `fresh` when the
    /// stream starts over.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn begin_stream(&mut self, config: &str, stream: &str, fresh: bool) -> Result<()> {
        let guest = &self.guest;
        self.sandbox.call("begin-stream", |s| {
            guest.call_begin_stream(s, config, stream, fresh)
        })
    }

    /// After every task of `stream` committed; returns outputs.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn finish_stream(&mut self, config: &str, stream: &str) -> Result<Vec<String>> {
        let guest = &self.guest;
        let outputs = self.sandbox.call("finish-stream", |s| {
            guest.call_finish_stream(s, config, stream)
        })?;
        self.sandbox.outputs("finish-stream", &outputs)?;
        Ok(outputs)
    }

    /// Open a writer; the instance becomes it.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn into_writer(
        mut self,
        config: &str,
        stream: &str,
        schema: &SchemaRef,
        task: &str,
    ) -> Result<SinkWriter> {
        let schema_ipc = encode_schema(schema);
        let guest = &self.guest;
        let handle = self.sandbox.call("writer.open", |s| {
            guest
                .writer()
                .call_open(s, config, stream, &schema_ipc, task)
        })?;
        Ok(SinkWriter {
            instance: self,
            handle: Some(handle),
            schema: schema.clone(),
        })
    }
}

/// An open writer.
pub struct SinkWriter {
    instance: SinkInstance,
    handle: Option<ResourceAny>,
    schema: SchemaRef,
}

impl SinkWriter {
    /// Write one batch; its schema must be the writer's.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let batch =
            crate::batch::conform(batch, &self.schema).map_err(|message| Error::InvalidOutput {
                plugin: "pipeline".into(),
                call: "writer.write".into(),
                message,
            })?;
        let handle = self.handle.expect("open until dropped");
        let input = self.instance.sandbox.lend(batch)?;
        let guest = &self.instance.guest;
        self.instance.sandbox.call("writer.write", |s| {
            guest.writer().call_write(s, handle, input)
        })
    }

    /// Make everything written so far durable, and keep writing: what
    /// follows belongs to the next commit. What the sink published in the
    /// commit is not visible yet: see [`Committed`].
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn commit_so_far(&mut self) -> Result<Committed> {
        let handle = self.handle.expect("open until dropped");
        self.committed(handle)
    }

    /// Make everything written durable; see [`SinkWriter::commit_so_far`].
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn commit(mut self) -> Result<Committed> {
        let handle = self.handle.take().expect("open until dropped");
        let committed = self.committed(handle);
        self.instance.sandbox.drop_resource(handle);
        committed
    }

    /// One `writer.commit`, its publishes held back.
    fn committed(&mut self, handle: ResourceAny) -> Result<Committed> {
        let guest = &self.instance.guest;
        let sandbox = &mut self.instance.sandbox;
        sandbox.store.data_mut().deferring = true;
        let info = sandbox.call("writer.commit", |s| guest.writer().call_commit(s, handle));
        let data = sandbox.store.data_mut();
        data.deferring = false;
        // Held back even when the commit failed: dropped, they discard.
        let pending = data.take_deferred();
        let info = info?;
        sandbox.outputs("writer.commit", &info.outputs)?;
        Ok(Committed {
            info: CommitInfo {
                rows: info.rows,
                bytes: info.bytes,
                outputs: info.outputs,
            },
            pending,
        })
    }

    /// Discard everything written.
    pub fn abort(mut self) {
        if let Some(handle) = self.handle.take() {
            let guest = &self.instance.guest;
            let _ = self.instance.sandbox.call("writer.abort", |s| {
                guest.writer().call_abort(s, handle).map(Ok)
            });
            self.instance.sandbox.drop_resource(handle);
        }
    }
}

impl Drop for SinkWriter {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.instance.sandbox.drop_resource(handle);
        }
    }
}

// The pipeline moves readers, transformers and writers to task threads.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<SourceReader>();
    is_send::<Transformer>();
    is_send::<SinkWriter>();
};
