//! Batches: host-owned handles, copied into the plugin only on request.
//!
//! Batch bytes cross WIT as Arrow IPC messages *without* the schema; the
//! schema crosses once, as a host `schema` handle this module caches.

use std::cell::RefCell;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{StreamDecoder, StreamReader};
use arrow_ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamWriter, write_message,
};
use arrow_schema::{Schema, SchemaRef};

use crate::__wit::sluice::plugin::types as wit;
use crate::{Error, Result};

/// A record batch held by the host.
///
/// Passing it on (to an encoder, to the host) copies nothing. Call
/// [`Batch::to_record_batch`] to look inside.
pub struct Batch(pub(crate) wit::Batch);

thread_local! {
    /// Host handles for the schemas this plugin builds batches of, so each
    /// schema crosses to the host once, not with every batch.
    static HOST_SCHEMAS: RefCell<Vec<(SchemaRef, wit::Schema)>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with the host's handle for `schema`, registering it once.
fn with_host_schema<R>(schema: &SchemaRef, f: impl FnOnce(&wit::Schema) -> R) -> Result<R> {
    HOST_SCHEMAS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let found = cache
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, schema) || **s == **schema);
        let i = match found {
            Some(i) => i,
            None => {
                if cache.len() >= 16 {
                    cache.remove(0);
                }
                let handle = wit::Schema::from_ipc(&encode_schema(schema))?;
                cache.push((schema.clone(), handle));
                cache.len() - 1
            }
        };
        Ok(f(&cache[i].1))
    })
}

impl Batch {
    /// Hand a batch built in the plugin to the host (one copy, as Arrow IPC).
    ///
    /// # Errors
    /// When the host refuses the bytes (never, for a valid batch).
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Batch> {
        let messages = encode_messages(batch)?;
        let handle = with_host_schema(&batch.schema(), |s| wit::Batch::from_ipc(s, &messages))??;
        Ok(Batch(handle))
    }

    /// Let the host build a batch from JSON Lines text against `schema`,
    /// natively: no Arrow code needed in the plugin.
    ///
    /// # Errors
    /// A data error naming the bad line.
    pub fn from_json_lines(schema: &SchemaRef, text: &str) -> Result<Batch> {
        let handle = with_host_schema(schema, |s| wit::Batch::from_json_lines(s, text))??;
        Ok(Batch(handle))
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
        BatchDecoder::new(&self.0.schema())?.decode(self.0.to_ipc())
    }

    /// Copy the batch into the plugin with a decoder for its known schema:
    /// what transformers use, so the schema is not fetched per batch.
    pub(crate) fn to_record_batch_with(&self, decoder: &mut BatchDecoder) -> Result<RecordBatch> {
        decoder.decode(self.0.to_ipc())
    }

    pub(crate) fn into_wit(self) -> wit::Batch {
        self.0
    }
}

/// Encode one batch as IPC messages without the schema.
pub(crate) fn encode_messages(batch: &RecordBatch) -> Result<Vec<u8>> {
    let options = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let (dictionaries, message) = IpcDataGenerator::default().encode(
        batch,
        &mut tracker,
        &options,
        &mut Default::default(),
    )?;
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 512);
    for encoded in dictionaries.into_iter().chain(std::iter::once(message)) {
        write_message(&mut out, encoded, &options)?;
    }
    Ok(out)
}

/// Decodes the host's schema-less batch messages for one schema.
pub(crate) struct BatchDecoder {
    schema_ipc: Vec<u8>,
    decoder: StreamDecoder,
}

impl BatchDecoder {
    pub(crate) fn new(schema_ipc: &[u8]) -> Result<BatchDecoder> {
        Ok(BatchDecoder {
            schema_ipc: schema_ipc.to_vec(),
            decoder: prime(schema_ipc)?,
        })
    }

    fn decode(&mut self, messages: Vec<u8>) -> Result<RecordBatch> {
        let mut buf = Buffer::from_vec(messages);
        loop {
            match self.decoder.decode(&mut buf) {
                Ok(Some(batch)) => return Ok(batch),
                Ok(None) if buf.is_empty() => {
                    self.decoder = prime(&self.schema_ipc)?;
                    return Err(Error::internal("the host sent no complete batch"));
                }
                Ok(None) => {}
                Err(e) => {
                    self.decoder = prime(&self.schema_ipc)?;
                    return Err(Error::internal(format!("bad IPC batch from the host: {e}")));
                }
            }
        }
    }
}

#[allow(unsafe_code)]
fn prime(schema_ipc: &[u8]) -> Result<StreamDecoder> {
    const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    let body = schema_ipc.strip_suffix(&EOS).unwrap_or(schema_ipc);
    // SAFETY: batches decoded here come from the host, which wrote them with
    // Arrow's own IPC writer from batches it had already validated
    // (everything a plugin hands the host is validated there). Validating
    // again would only repeat the host's work on every batch.
    let mut decoder = unsafe { StreamDecoder::new().with_skip_validation(true) };
    let mut buf = Buffer::from(body);
    while !buf.is_empty() {
        decoder
            .decode(&mut buf)
            .map_err(|e| Error::internal(format!("bad IPC schema from the host: {e}")))?;
    }
    // The decoder finishes reading the (bodiless) schema message when the
    // first batch's bytes arrive: it only steps while it has input.
    Ok(decoder)
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
