//! What a plugin author implements.
//!
//! Every optional method has a default, so a plugin overrides only what it
//! does; unsupported operations answer with a clear config error.

use arrow_array::RecordBatch;
use arrow_buffer::BooleanBuffer;
use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use sluice_types::columnar::{self, Plan};

use crate::{Batch, Error, Result};

/// What `info()` reports, besides the kind and the config schema (which
/// the SDK derives from the trait and `Config`).
#[derive(Debug, Clone)]
pub struct Info {
    /// Short name, e.g. `file`.
    pub name: &'static str,
    /// The plugin's semver; `env!("CARGO_PKG_VERSION")` is a good choice.
    pub version: &'static str,
    /// One line for `sluice plugin list`.
    pub description: &'static str,
    /// Host capabilities needed: `blob`, `codec`, `sql`, `http`.
    pub capabilities: &'static [&'static str],
}

/// How a stream can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Everything, every run.
    FullRefresh,
    /// Only what is new since the saved state.
    Incremental,
}

/// A stream the source can read.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// Its name.
    pub name: String,
    /// Its schema, if known before reading.
    pub schema: Option<SchemaRef>,
    /// Primary key columns.
    pub primary_key: Vec<String>,
    /// Cursor columns for incremental reads.
    pub cursor_fields: Vec<String>,
    /// Supported sync modes.
    pub sync_modes: Vec<SyncMode>,
}

/// A slice of a stream that one task reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The stream.
    pub stream: String,
    /// Stable id: the host keys saved state by it.
    pub id: String,
    /// Whatever the reader needs to find its slice.
    pub spec: String,
}

/// What a [`Reader`] yields.
pub enum Event {
    /// Rows.
    Batch(Batch),
    /// State covering every batch before it; saved after the sink commits.
    Checkpoint(String),
}

/// A source plugin.
pub trait Source: 'static {
    /// The config, validated by the host against its JSON Schema.
    type Config: DeserializeOwned + JsonSchema;
    /// Reads one partition.
    type Reader: Reader;

    /// Name, version, description, capabilities.
    fn info() -> Info;

    /// Validate config and connectivity without reading data.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn check(_config: &Self::Config) -> Result<()> {
        Ok(())
    }

    /// The streams this source can read.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn discover(config: &Self::Config) -> Result<Vec<StreamInfo>>;

    /// Split `stream` into partitions. `state` is the JSON object of every
    /// partition's saved state (`{"<partition id>": "<state>"}`), if any.
    /// The default is one partition, `0`.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn partitions(
        _config: &Self::Config,
        stream: &str,
        _state: Option<&str>,
    ) -> Result<Vec<Partition>> {
        Ok(vec![Partition {
            stream: stream.to_string(),
            id: "0".into(),
            spec: String::new(),
        }])
    }

    /// Open a reader; `state` is this partition's saved state.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn open(
        config: Self::Config,
        partition: Partition,
        state: Option<String>,
    ) -> Result<Self::Reader>;
}

/// Reads one partition.
pub trait Reader: 'static {
    /// The next event, or `None` at the end of the partition.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn next(&mut self) -> Result<Option<Event>>;
}

/// A filter plugin.
pub trait Filter: 'static {
    /// The config.
    type Config: DeserializeOwned + JsonSchema;
    /// Transforms batches for one task.
    type Transformer: Transformer;

    /// Name, version, description, capabilities.
    fn info() -> Info;

    /// Open a transformer for batches of `input`.
    ///
    /// # Errors
    /// A config error for an unknown column, say.
    fn open(config: Self::Config, input: SchemaRef) -> Result<Self::Transformer>;
}

/// Transforms batches.
///
/// Row-wise transformers implement [`process`](Transformer::process) (and
/// [`finish`](Transformer::finish) if they hold rows back). Column-wise ones
/// (keep some rows, pass some columns through, compute others) implement
/// [`plan`](Transformer::plan), [`keep`](Transformer::keep) and
/// [`compute`](Transformer::compute) instead: the host then sends `keep`
/// only the columns it reads, `compute` only the columns it reads for the
/// rows kept, and filters and assembles everything else natively, which is
/// what makes a wasm filter nearly as fast as native code. `process` then
/// has a default built from the three.
pub trait Transformer: 'static {
    /// The schema of every batch returned.
    fn output_schema(&self) -> SchemaRef;

    /// A column-wise transformer's plan; `None` (the default) for row-wise.
    fn plan(&self) -> Option<Plan> {
        None
    }

    /// Column-wise: which rows of one batch to keep, one bit per row.
    /// `columns` holds exactly the plan's `keep_reads`;
    /// [`keep_where`](crate::keep_where) turns a boolean mask into the
    /// answer. Called only when the plan has `keep_reads`.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer> {
        let _ = columns;
        Err(Error::internal(
            "the plan has keep_reads, but the transformer has no `keep`",
        ))
    }

    /// Column-wise: the computed columns (the plan's `Computed(k)`), one
    /// value per row of `rows`, which holds the plan's `compute_reads` for
    /// the kept rows only: a cast never sees a value `keep` dropped. Called
    /// only when the plan has computed columns and some row is kept.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch> {
        let _ = rows;
        Err(Error::internal(
            "the plan has computed columns, but the transformer has no `compute`",
        ))
    }

    /// Transform one batch into zero or more.
    ///
    /// The default serves column-wise transformers, through the same code
    /// as the host ([`sluice_types::columnar::run`]).
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let Some(plan) = self.plan() else {
            return Err(Error::internal(
                "a transformer must implement `process`, or `plan` with `keep` or `compute`",
            ));
        };
        let output = self.output_schema();
        let out =
            columnar::run(&batch, &plan, &output, &mut Native(self)).map_err(|f| match f {
                columnar::Failure::Filter(e) => e,
                columnar::Failure::Invalid { call, message } => {
                    Error::internal(format!("{call}: {message}"))
                }
            })?;
        Ok(if out.num_rows() == 0 {
            Vec::new()
        } else {
            vec![out]
        })
    }

    /// Emit whatever was held back; called once after the last batch.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }
}

/// A transformer answering the host's column-wise questions in-process.
struct Native<'a, T: ?Sized>(&'a mut T);

impl<T: Transformer + ?Sized> columnar::ColumnWise for Native<'_, T> {
    type Error = Error;
    fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer> {
        self.0.keep(columns)
    }
    fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch> {
        self.0.compute(rows)
    }
}

/// What a commit made durable.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// Where they went.
    pub outputs: Vec<String>,
}

/// A sink plugin.
pub trait Sink: 'static {
    /// The config.
    type Config: DeserializeOwned + JsonSchema;
    /// Writes one task's batches.
    type Writer: Writer;

    /// Name, version, description, capabilities.
    fn info() -> Info;

    /// Validate config and connectivity without writing.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn check(_config: &Self::Config) -> Result<()> {
        Ok(())
    }

    /// Open a writer for `stream`; `task` is unique within the run.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn open(
        config: Self::Config,
        stream: &str,
        schema: SchemaRef,
        task: &str,
    ) -> Result<Self::Writer>;

    /// Before any writer of `stream` opens in a run. `fresh`: discard what
    /// an unfinished earlier run staged; otherwise the run resumes it.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn begin_stream(_config: &Self::Config, _stream: &str, _fresh: bool) -> Result<()> {
        Ok(())
    }

    /// After every task of `stream` committed in this run: publish what the
    /// commits staged. Returns outputs for the run summary.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn finish_stream(_config: &Self::Config, _stream: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Writes batches for one task.
pub trait Writer: 'static {
    /// Write one batch.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn write(&mut self, batch: Batch) -> Result<()>;

    /// Make everything written since the previous commit durable and
    /// visible, and report only that. The host may commit several times in
    /// one task (at source checkpoints) and keep writing afterwards.
    ///
    /// # Errors
    /// Whatever is wrong, typed.
    fn commit(&mut self) -> Result<CommitInfo>;

    /// Discard everything written.
    fn abort(&mut self) {}
}

/// Parse config JSON the host already validated.
pub(crate) fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C> {
    serde_json::from_str(json).map_err(|e| Error::config(format!("config: {e}")))
}

/// The config's JSON Schema, as `info()` reports it.
pub(crate) fn config_schema<C: JsonSchema>() -> String {
    serde_json::to_string(&schemars::schema_for!(C)).expect("schemas serialize")
}
