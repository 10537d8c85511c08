//! Batches: host-owned handles, copied into the plugin only on request.
//!
//! Batch bytes cross WIT as Arrow IPC messages *without* the schema; the
//! schema crosses once, as a host `schema` handle this module caches.

use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};

use crate::{Error, Result};

#[cfg(target_arch = "wasm32")]
use {
    crate::__wit::sluice::plugin::types as wit,
    arrow_buffer::Buffer,
    arrow_ipc::reader::FileDecoder,
    arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, write_message},
    arrow_ipc::{Block, MessageHeader, MetadataVersion},
    std::cell::RefCell,
    std::sync::Arc,
};

/// A record batch held by the host.
///
/// Passing it on (to an encoder, to the host) copies nothing. Call
/// [`Batch::to_record_batch`] to look inside. In a native build (unit
/// tests with [`crate::testing`]) it simply holds the batch.
#[cfg(target_arch = "wasm32")]
pub struct Batch(pub(crate) wit::Batch);

/// A record batch (the native build: see [`crate::testing`]).
#[cfg(not(target_arch = "wasm32"))]
pub struct Batch(pub(crate) RecordBatch);

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// Host handles for the schemas this plugin builds batches of, so each
    /// schema crosses to the host once, not with every batch.
    static HOST_SCHEMAS: RefCell<Vec<(SchemaRef, wit::Schema)>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with the host's handle for `schema`, registering it once.
#[cfg(target_arch = "wasm32")]
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

#[cfg(target_arch = "wasm32")]
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

#[cfg(not(target_arch = "wasm32"))]
impl Batch {
    /// Wrap a batch built in the plugin.
    ///
    /// # Errors
    /// Never natively; see the wasm build.
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Batch> {
        Ok(Batch(batch.clone()))
    }

    /// Build a batch from JSON Lines text against `schema`, with the
    /// host's own converter.
    ///
    /// # Errors
    /// A data error naming what did not fit.
    pub fn from_json_lines(schema: &SchemaRef, text: &str) -> Result<Batch> {
        Ok(Batch(sluice_codec::json_lines_to_batch(
            schema.clone(),
            text,
        )?))
    }

    /// Rows in the batch.
    pub fn num_rows(&self) -> u64 {
        self.0.num_rows() as u64
    }

    /// Rows `offset .. offset + len` (clamped).
    pub fn slice(&self, offset: u64, len: u64) -> Batch {
        let rows = self.0.num_rows() as u64;
        let offset = offset.min(rows);
        Batch(
            self.0
                .slice(offset as usize, len.min(rows - offset) as usize),
        )
    }

    /// The batch's schema.
    ///
    /// # Errors
    /// Never natively.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(self.0.schema())
    }

    /// The batch.
    ///
    /// # Errors
    /// Never natively.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        Ok(self.0.clone())
    }
}

/// Encode one batch as IPC messages without the schema.
#[cfg(target_arch = "wasm32")]
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
#[cfg(target_arch = "wasm32")]
pub(crate) struct BatchDecoder {
    decoder: FileDecoder,
}

#[cfg(target_arch = "wasm32")]
impl BatchDecoder {
    #[allow(unsafe_code)]
    pub(crate) fn new(schema_ipc: &[u8]) -> Result<BatchDecoder> {
        let schema = decode_schema(schema_ipc)?;
        // SAFETY: batches decoded here come from the host, which wrote them
        // with Arrow's own IPC writer from batches it had already validated
        // (everything a plugin hands the host is validated there).
        // Validating again would only repeat the host's work on every batch.
        let decoder =
            unsafe { FileDecoder::new(schema, MetadataVersion::V5).with_skip_validation(true) };
        Ok(BatchDecoder { decoder })
    }

    fn decode(&mut self, messages: Vec<u8>) -> Result<RecordBatch> {
        let bad = |what: &str| Error::internal(format!("bad IPC batch from the host: {what}"));
        let buf = Buffer::from_vec(messages);
        let mut at = 0;
        let mut batch = None;
        while at < buf.len() {
            let bytes = &buf[at..];
            let word = |i: usize| {
                bytes
                    .get(i..i + 4)
                    .map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                    .ok_or_else(|| bad("truncated message"))
            };
            // A message: continuation marker, metadata length, metadata, body.
            let (prefix, meta_len) = match word(0)? {
                -1 => (8, word(4)?),
                len => (4, len),
            };
            let meta_end = prefix + usize::try_from(meta_len).map_err(|_| bad("length"))?;
            let message = arrow_ipc::root_as_message(
                bytes
                    .get(prefix..meta_end)
                    .ok_or_else(|| bad("truncated metadata"))?,
            )
            .map_err(|e| bad(&e.to_string()))?;
            let body_len = usize::try_from(message.bodyLength()).map_err(|_| bad("length"))?;
            let total = meta_end + body_len;
            if total > bytes.len() {
                return Err(bad("truncated body"));
            }
            let block = Block::new(at as i64, meta_end as i32, body_len as i64);
            let slice = buf.slice_with_length(at, total);
            match message.header_type() {
                MessageHeader::DictionaryBatch => self.decoder.read_dictionary(&block, &slice)?,
                MessageHeader::RecordBatch => {
                    batch = self.decoder.read_record_batch(&block, &slice)?
                }
                other => return Err(bad(&format!("unexpected {other:?} message"))),
            }
            at += total;
        }
        batch.ok_or_else(|| bad("no record batch"))
    }
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
