//! The host's native CSV, JSON Lines and Parquet readers and writers.
//!
//! Batches decoded here stay in the host: a file source passes them on
//! without copying rows into wasm memory.

use arrow_schema::{Schema, SchemaRef};

use crate::__wit::sluice::plugin::codec as wit;
use crate::batch::{decode_schema, encode_schema};
use crate::{Batch, Result};

/// Reads one object (within the blob grant) as batches.
pub struct Decoder(wit::Decoder);

impl Decoder {
    /// Open `path`; `options` is the JSON the host's codec documents
    /// (`format`, `compression`, `header`, `delimiter`, …).
    ///
    /// # Errors
    /// Config errors for bad options, data errors for unreadable files.
    pub fn open(path: &str, options: &serde_json::Value) -> Result<Decoder> {
        Ok(Decoder(wit::Decoder::open(path, &options.to_string())?))
    }

    /// The schema every batch will have.
    ///
    /// # Errors
    /// Only on a host bug.
    pub fn schema(&self) -> Result<SchemaRef> {
        decode_schema(&self.0.schema())
    }

    /// The next batch, or `None` at the end.
    ///
    /// # Errors
    /// A data error naming the file and line.
    pub fn next_batch(&self) -> Result<Option<Batch>> {
        Ok(self.0.next()?.map(Batch))
    }

    /// Rows skipped as invalid so far.
    pub fn rejected(&self) -> u64 {
        self.0.rejected()
    }
}

/// Writes batches to one object (within a writable blob grant).
pub struct Encoder(wit::Encoder);

impl Encoder {
    /// Create `path` for batches of `schema`; `options` is JSON (`format`,
    /// `compression`, `level`, `header`, `delimiter`, `row_group_rows`).
    ///
    /// # Errors
    /// Config errors for bad options or a read-only grant.
    pub fn create(path: &str, schema: &Schema, options: &serde_json::Value) -> Result<Encoder> {
        Ok(Encoder(wit::Encoder::create(
            path,
            &encode_schema(schema),
            &options.to_string(),
        )?))
    }

    /// Append a batch (no copy: the host writes its own batch).
    ///
    /// # Errors
    /// When the batch's schema differs or the write fails.
    pub fn write(&self, batch: &Batch) -> Result<()> {
        Ok(self.0.write(&batch.0)?)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.0.bytes_written()
    }

    /// Flush and close; returns the size in bytes.
    ///
    /// # Errors
    /// When the final flush fails.
    pub fn finish(&self) -> Result<u64> {
        Ok(self.0.finish()?)
    }
}
