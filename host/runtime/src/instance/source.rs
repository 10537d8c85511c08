//! Source instances: `check`, `discover`, `partitions`, and a reader per
//! partition.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::component::ResourceAny;

use super::Sandbox;
use crate::batch::decode_schema;
use crate::bindings::source;
use crate::error::Result;
use crate::limits::{setting, within};
use crate::versioned::SourceGuest;

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
    guest: SourceGuest,
}

impl SourceInstance {
    pub(crate) fn new(sandbox: Sandbox, guest: SourceGuest) -> Self {
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
            guest.call_reader_open(s, config, &wit_partition, state)
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
            .call("reader.next", |s| guest.call_reader_next(s, handle))?;
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
