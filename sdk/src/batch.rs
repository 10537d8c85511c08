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
    crate::__wit::sluice::plugin0_2_0::{arrays as wit_arrays, types as wit},
    arrow_array::{ArrayRef, RecordBatchOptions, make_array},
    arrow_buffer::{BooleanBuffer, Buffer, NullBuffer},
    arrow_data::{ArrayData, ArrayDataBuilder},
    arrow_schema::DataType,
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
pub(crate) fn with_host_schema<R>(
    schema: &SchemaRef,
    f: impl FnOnce(&wit::Schema) -> R,
) -> Result<R> {
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
        let messages = sluice_types::ipc::encode_batch_messages(batch)?;
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

    /// [`Batch::from_json_lines`] with the text as UTF-8 bytes
    /// (`batch.from-json-bytes`), which the host validates.
    ///
    /// # Errors
    /// A data error naming the bad line, or bytes that are not UTF-8.
    pub fn from_json_bytes(schema: &SchemaRef, text: &[u8]) -> Result<Batch> {
        let handle = with_host_schema(schema, |s| wit::Batch::from_json_bytes(s, text))??;
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

    /// Copy the batch into the plugin: each Arrow buffer once, straight
    /// from the host's memory into the plugin's.
    ///
    /// # Errors
    /// When what the host sends does not fit the schema (a host bug).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        self.to_record_batch_with(&decode_schema(&self.0.schema())?)
    }

    /// Copy the batch into the plugin, its schema known: what transformers
    /// use, so the schema is not fetched per batch.
    pub(crate) fn to_record_batch_with(&self, schema: &SchemaRef) -> Result<RecordBatch> {
        from_arrays(schema, wit_arrays::to_arrays(&self.0))
    }

    /// The rows as JSON Lines, written by the host (`batch.to-json-lines`):
    /// decimals as strings, so they read back exactly.
    ///
    /// # Errors
    /// A type JSON cannot carry.
    pub fn to_json_lines(&self) -> Result<String> {
        Ok(self.0.to_json_lines()?)
    }

    /// [`Batch::to_json_lines`] as UTF-8 bytes (`batch.to-json-bytes`).
    ///
    /// # Errors
    /// A type JSON cannot carry.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.0.to_json_bytes()?)
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

    /// [`Batch::from_json_lines`] with the text as UTF-8 bytes.
    ///
    /// # Errors
    /// A data error naming what did not fit, or bytes that are not UTF-8.
    pub fn from_json_bytes(schema: &SchemaRef, text: &[u8]) -> Result<Batch> {
        let text = std::str::from_utf8(text).map_err(|e| {
            crate::Error::data(format!("JSON Lines: not UTF-8 at byte {}", e.valid_up_to()))
        })?;
        Batch::from_json_lines(schema, text)
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

    /// The rows as JSON Lines, with the host's own writer.
    ///
    /// # Errors
    /// A type JSON cannot carry.
    pub fn to_json_lines(&self) -> Result<String> {
        Ok(sluice_codec::batch_to_json_lines(&self.0)?)
    }

    /// [`Batch::to_json_lines`] as UTF-8 bytes.
    ///
    /// # Errors
    /// A type JSON cannot carry.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.to_json_lines()?.into_bytes())
    }
}

/// Rebuild a batch from its arrays as the host laid them out
/// (`wit/arrays.wit`): the buffers become the arrays' own, with no copy
/// unless one is not aligned for its type.
#[cfg(target_arch = "wasm32")]
fn from_arrays(schema: &SchemaRef, arrays: wit_arrays::BatchArrays) -> Result<RecordBatch> {
    let rows = usize::try_from(arrays.rows).map_err(|_| bad_arrays("row count"))?;
    let mut layouts = arrays.arrays.into_iter();
    let mut buffers = arrays.buffers.into_iter();
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            Ok(make_array(array(
                f.data_type(),
                &mut layouts,
                &mut buffers,
            )?))
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    if layouts.next().is_some() || buffers.next().is_some() {
        return Err(bad_arrays("more arrays or buffers than the schema has"));
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

#[cfg(target_arch = "wasm32")]
fn bad_arrays(what: &str) -> Error {
    Error::internal(format!("bad batch arrays from the host: {what}"))
}

/// One array of type `dt` and its children, depth first.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
fn array(
    dt: &DataType,
    layouts: &mut impl Iterator<Item = wit_arrays::ArrayLayout>,
    buffers: &mut impl Iterator<Item = Vec<u8>>,
) -> Result<ArrayData> {
    let layout = layouts
        .next()
        .ok_or_else(|| bad_arrays("fewer arrays than the schema has"))?;
    let size = |n: u64| usize::try_from(n).map_err(|_| bad_arrays("size"));
    let (len, offset) = (size(layout.length)?, size(layout.offset)?);
    let mut take = || {
        buffers
            .next()
            .map(Buffer::from_vec)
            .ok_or_else(|| bad_arrays("fewer buffers than the arrays need"))
    };
    let nulls = match layout.null_count {
        0 => None,
        count => {
            let bits = take()?;
            let start = size(layout.validity_offset)?;
            if bits.len() * 8 < start.saturating_add(len) {
                return Err(bad_arrays("validity bitmap too short"));
            }
            let bits = BooleanBuffer::new(bits, start, len);
            // SAFETY: the count is the host's, for the bitmap it laid out
            // (checked by `validate` below).
            Some(unsafe { NullBuffer::new_unchecked(bits, size(count)?) })
        }
    };
    let values = (0..layout.buffers)
        .map(|_| take())
        .collect::<Result<Vec<_>>>()?;
    let child_types = children(dt);
    if child_types.len() != layout.children as usize {
        return Err(bad_arrays(&format!(
            "{dt} has {} children, the host sent {}",
            child_types.len(),
            layout.children
        )));
    }
    let child_data = child_types
        .into_iter()
        .map(|t| array(t, layouts, buffers))
        .collect::<Result<Vec<_>>>()?;
    let builder = ArrayDataBuilder::new(dt.clone())
        .len(len)
        .offset(offset)
        .nulls(nulls)
        .buffers(values)
        .child_data(child_data)
        .align_buffers(true);
    // SAFETY: the arrays come from the host, which holds only batches it
    // validated (everything a plugin hands it is validated there), so their
    // values are not checked again here. Their shape is: buffer counts and
    // sizes, offsets and lengths (`validate`, which reads no values).
    let data = unsafe { builder.build_unchecked() };
    data.validate()?;
    Ok(data)
}

/// The types of an array's children, in Arrow's order.
#[cfg(target_arch = "wasm32")]
fn children(dt: &DataType) -> Vec<&DataType> {
    match dt {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => vec![f.data_type()],
        DataType::Struct(fields) => fields.iter().map(|f| f.data_type()).collect(),
        DataType::Union(fields, _) => fields.iter().map(|(_, f)| f.data_type()).collect(),
        DataType::Dictionary(_, values) => vec![values.as_ref()],
        DataType::RunEndEncoded(ends, values) => vec![ends.data_type(), values.data_type()],
        _ => Vec::new(),
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
