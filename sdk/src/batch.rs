//! Batches: host-owned handles, copied into the plugin only on request.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};

use crate::__wit::sluice::plugin::types as wit;
use crate::{Error, Result};

/// A record batch held by the host.
///
/// Passing it on (to an encoder, to the host) copies nothing. Call
/// [`Batch::to_record_batch`] to look inside.
pub struct Batch(pub(crate) wit::Batch);

impl Batch {
    /// Hand a batch built in the plugin to the host (one copy, as Arrow IPC).
    ///
    /// # Errors
    /// When the host refuses the bytes (never, for a valid batch).
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Batch> {
        let ipc = encode_batch(batch)?;
        Ok(Batch(wit::Batch::from_ipc(&ipc)?))
    }

    /// Let the host build a batch from JSON Lines text against `schema`,
    /// natively: no Arrow code needed in the plugin.
    ///
    /// # Errors
    /// A data error naming the bad line.
    pub fn from_json_lines(schema: &Schema, text: &str) -> Result<Batch> {
        Ok(Batch(wit::Batch::from_json_lines(
            &encode_schema(schema),
            text,
        )?))
    }

    /// Rows in the batch.
    pub fn num_rows(&self) -> u64 {
        self.0.num_rows()
    }

    /// Rows `offset .. offset + len` (clamped), sharing the host's memory.
    pub fn slice(&self, offset: u64, len: u64) -> Batch {
        Batch(self.0.slice(offset, len))
    }

    /// The batch's schema.
    ///
    /// # Errors
    /// When the host sends bytes that are not a schema (a host bug).
    pub fn schema(&self) -> Result<SchemaRef> {
        decode_schema(&self.0.schema())
    }

    /// Copy the batch into the plugin.
    ///
    /// # Errors
    /// When the IPC bytes do not decode (a host bug).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        decode_batch(&self.0.to_ipc())
    }

    pub(crate) fn into_wit(self) -> wit::Batch {
        self.0
    }
}

/// Encode one batch as an IPC stream.
pub(crate) fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Encode a schema as an IPC stream with no batches.
pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, schema).expect("valid schema");
    writer.finish().expect("write to Vec");
    drop(writer);
    out
}

/// Decode a schema sent as an IPC stream.
///
/// # Errors
/// When the bytes are not an IPC stream.
pub fn decode_schema(ipc: &[u8]) -> Result<SchemaRef> {
    let reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| Error::internal(format!("bad IPC schema: {e}")))?;
    Ok(reader.schema())
}

/// Decode a batch the host sent.
#[allow(unsafe_code)]
pub(crate) fn decode_batch(ipc: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| Error::internal(format!("bad IPC batch: {e}")))?;
    // SAFETY: these bytes come from the host, which wrote them with Arrow's
    // own IPC writer from a batch it had already validated (everything a
    // plugin hands the host is validated there). Validating again here
    // would only repeat the host's work on every batch.
    let mut reader = unsafe { reader.with_skip_validation(true) };
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Ok(RecordBatch::new_empty(Arc::clone(&reader.schema()))),
    }
}
