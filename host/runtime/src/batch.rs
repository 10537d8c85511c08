//! Host-owned record batches and their Arrow IPC encoding.
//!
//! Batches cross the WIT boundary as `batch` resources: the rows stay here,
//! and a plugin copies them into its memory (as IPC) only when it asks.

use std::io::Cursor;

use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::{StreamDecoder, StreamReader};
use arrow::ipc::writer::{StreamEncoder, StreamWriter};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use std::sync::Arc;

/// A record batch held by the host on behalf of a plugin.
#[derive(Debug, Clone)]
pub struct Batch(pub RecordBatch);

/// The end-of-stream marker that closes an IPC stream.
const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Encode a batch as IPC messages without the schema: dictionary batches,
/// then the record batch. This is what crosses WIT for every batch.
///
/// A large batch goes through Arrow's stream encoder, which hands back the
/// message headers and the batch's own buffers without copying them, so its
/// rows are copied once here (and once more by wasmtime, into the guest).
/// That encoder costs ~10 µs to set up, so a small batch is written the
/// direct way: two copies of a few bytes are cheaper.
pub fn encode_messages(batch: &RecordBatch) -> Vec<u8> {
    if batch.get_array_memory_size() < GATHER_FROM_BYTES {
        return encode_small(batch);
    }
    let schema = batch.schema();
    let mut encoder = StreamEncoder::try_new(&schema).expect("a batch's own schema encodes");
    // A stream encoder's first message is the schema: send it with an empty
    // batch and drop both, so what follows is the batch alone.
    encoder
        .encode(&RecordBatch::new_empty(schema))
        .expect("an empty batch of a valid schema encodes");
    let parts = encoder
        .encode(batch)
        .expect("encoding a valid batch cannot fail");
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in &parts {
        out.extend_from_slice(part.as_slice());
    }
    out
}

/// Batches at least this big are gathered without an intermediate copy.
const GATHER_FROM_BYTES: usize = 256 * 1024;

fn encode_small(batch: &RecordBatch) -> Vec<u8> {
    sluice_types::ipc::encode_batch_messages(batch).expect("encoding a valid batch cannot fail")
}

/// Decodes schema-less batch messages against one known schema: the host
/// side of the `schema` resource. Every buffer is validated.
pub struct SchemaDecoder {
    schema: SchemaRef,
    ipc: Vec<u8>,
    decoder: StreamDecoder,
}

impl SchemaDecoder {
    /// From an IPC-encoded schema (a stream with no batches).
    ///
    /// # Errors
    /// When the bytes are not a schema.
    pub fn from_ipc(ipc: Vec<u8>) -> Result<SchemaDecoder, String> {
        let schema = decode_schema(&ipc)?;
        let decoder = prime(&ipc)?;
        Ok(SchemaDecoder {
            schema,
            ipc,
            decoder,
        })
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The schema as an IPC stream with no batches.
    pub fn ipc(&self) -> &[u8] {
        &self.ipc
    }

    /// Decode one batch's messages.
    ///
    /// # Errors
    /// A message saying what is wrong; the decoder is reset, so a bad batch
    /// never affects the next one.
    pub fn decode(&mut self, messages: Vec<u8>) -> Result<RecordBatch, String> {
        let result = decode_with(&mut self.decoder, messages);
        if result.is_err() {
            self.decoder = prime(&self.ipc).expect("primed once already");
        }
        result
    }
}

fn prime(schema_ipc: &[u8]) -> Result<StreamDecoder, String> {
    let body = schema_ipc.strip_suffix(&EOS).unwrap_or(schema_ipc);
    let mut decoder = StreamDecoder::new();
    let mut buf = Buffer::from(body);
    while !buf.is_empty() {
        match decoder.decode(&mut buf) {
            Ok(None) => {}
            Ok(Some(_)) => return Err("a schema was expected, not a record batch".into()),
            Err(e) => return Err(format!("not an IPC schema: {e}")),
        }
    }
    // The decoder finishes reading the (bodiless) schema message when the
    // first batch's bytes arrive: it only steps while it has input.
    Ok(decoder)
}

/// Check the framing of IPC messages before arrow-ipc reads them: every
/// message's metadata verifies as a flatbuffer, its body fits in the bytes
/// given, no body is compressed, and every buffer a batch names lies inside
/// its message's body. arrow-ipc slices buffers without checking, and would
/// panic on an offset past the end.
fn check_framing(bytes: &[u8]) -> Result<(), String> {
    use arrow::ipc::{MessageHeader, root_as_message};
    let word = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("four bytes")))
    };
    let mut at = 0usize;
    while at < bytes.len() {
        let mut len = word(at).ok_or("not Arrow IPC: a message is cut short")?;
        at += 4;
        if len == 0xffff_ffff {
            len = word(at).ok_or("not Arrow IPC: a message is cut short")?;
            at += 4;
        }
        if len == 0 {
            return Err("not Arrow IPC: an end-of-stream marker among the messages".into());
        }
        let meta_end = at
            .checked_add(len as usize)
            .filter(|end| *end <= bytes.len())
            .ok_or("not Arrow IPC: the bytes end inside a message")?;
        let message = root_as_message(&bytes[at..meta_end])
            .map_err(|e| format!("not Arrow IPC: a message header is invalid: {e}"))?;
        let body = usize::try_from(message.bodyLength())
            .map_err(|_| "not Arrow IPC: a negative body length".to_string())?;
        let body_end = meta_end
            .checked_add(body)
            .filter(|end| *end <= bytes.len())
            .ok_or("not Arrow IPC: the bytes end inside a message body")?;
        let batch = match message.header_type() {
            MessageHeader::RecordBatch => message.header_as_record_batch(),
            MessageHeader::DictionaryBatch => {
                message.header_as_dictionary_batch().and_then(|d| d.data())
            }
            other => return Err(format!("not a batch: an IPC {other:?} message")),
        }
        .ok_or("not Arrow IPC: a batch message has no batch")?;
        if batch.compression().is_some() {
            return Err("compressed IPC bodies are not accepted: send them uncompressed".into());
        }
        for buffer in batch.buffers().into_iter().flatten() {
            let fits = usize::try_from(buffer.offset())
                .ok()
                .zip(usize::try_from(buffer.length()).ok())
                .and_then(|(offset, length)| offset.checked_add(length))
                .is_some_and(|end| end <= body);
            if !fits {
                return Err(format!(
                    "not Arrow IPC: a buffer ({} bytes at {}) lies outside its message body of {body} bytes",
                    buffer.length(),
                    buffer.offset()
                ));
            }
        }
        at = body_end;
    }
    Ok(())
}

fn decode_with(decoder: &mut StreamDecoder, messages: Vec<u8>) -> Result<RecordBatch, String> {
    check_framing(&messages)?;
    // arrow-ipc still asserts on a few layouts it builds before validating
    // (the type ids of a union shorter than the union): a panic there is
    // bad input, not a host failure.
    crate::panic::catch(|| decode_checked(decoder, messages))
        .map_err(|panic| format!("not valid Arrow IPC ({panic})"))?
}

fn decode_checked(decoder: &mut StreamDecoder, messages: Vec<u8>) -> Result<RecordBatch, String> {
    let mut buf = Buffer::from_vec(messages);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(batch)) if buf.is_empty() => return Ok(batch),
            Ok(Some(_)) => return Err("more than one record batch".into()),
            Ok(None) if buf.is_empty() => {
                return Err("not Arrow IPC: the bytes end inside a message".into());
            }
            Ok(None) => {}
            Err(e) => return Err(format!("not Arrow IPC: {e}")),
        }
    }
}

/// Encode a schema as an IPC stream with no batches: how schemas cross WIT.
pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut out, schema)
            .expect("writing an IPC schema to a Vec cannot fail");
        writer.finish().expect("finishing IPC to a Vec cannot fail");
    }
    out
}

/// Decode a schema sent as an IPC stream with no batches.
///
/// # Errors
/// A message when the bytes are not an IPC stream.
pub fn decode_schema(ipc: &[u8]) -> Result<SchemaRef, String> {
    let reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| format!("not an Arrow IPC schema: {e}"))?;
    Ok(reader.schema())
}

pub use sluice_types::same_fields;

/// The columns of a schema for a message: `id: Int64 not null, name: Utf8`.
pub fn describe_fields(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "" } else { " not null" };
            format!("{}: {}{null}", f.name(), f.data_type())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `batch` under `schema`: the same column names and types (metadata and
/// declared nullability aside), and no null in a column `schema` says has
/// none. What passes goes on under `schema` itself, so every stage after
/// sees one schema for the whole stream.
///
/// # Errors
/// What differs, for a message that names the plugin that sent the batch.
pub fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if Arc::ptr_eq(&batch.schema(), schema) {
        return Ok(batch);
    }
    if !same_fields(&batch.schema(), schema) {
        return Err(format!(
            "the batch's columns ({}) differ from the stream's ({})",
            describe_fields(&batch.schema()),
            describe_fields(schema)
        ));
    }
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let nulls = column.null_count();
        if !field.is_nullable() && nulls > 0 {
            return Err(format!(
                "column `{}` is declared not null, but the batch has {nulls} null(s) in it",
                field.name()
            ));
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), batch.columns().to_vec(), &options)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn schema_round_trip() {
        let batch = sample();
        let schema = decode_schema(&encode_schema(&batch.schema())).unwrap();
        assert_eq!(*schema, *batch.schema());
    }

    #[test]
    fn messages_round_trip_against_a_known_schema() {
        let batch = sample();
        let mut decoder = SchemaDecoder::from_ipc(encode_schema(&batch.schema())).unwrap();
        for _ in 0..3 {
            assert_eq!(decoder.decode(encode_messages(&batch)).unwrap(), batch);
        }
        assert!(decoder.decode(b"garbage".to_vec()).is_err());
        let mut cut = encode_messages(&batch);
        cut.truncate(cut.len() / 2);
        assert!(decoder.decode(cut).is_err());
        let mut two = encode_messages(&batch);
        two.extend(encode_messages(&batch));
        assert!(decoder.decode(two).is_err());
        // Errors reset the decoder: the next good batch still decodes.
        assert_eq!(decoder.decode(encode_messages(&batch)).unwrap(), batch);
        assert!(SchemaDecoder::from_ipc(b"nope".to_vec()).is_err());
    }

    /// Corrupted messages are refused with an error, never a panic: every
    /// byte of a real batch's messages flipped, cut or overwritten, in a
    /// seeded loop.
    #[test]
    fn corrupted_messages_are_refused_without_panicking() {
        use arrow::array::{DictionaryArray, ListArray};
        use arrow::datatypes::{Int32Type, Int64Type};
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![Some(3)]),
        ]);
        let flags: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")])) as _,
            ),
            ("list", Arc::new(list) as _),
            ("flag", Arc::new(flags) as _),
        ])
        .unwrap();
        let good = encode_messages(&batch);
        let mut decoder = SchemaDecoder::from_ipc(encode_schema(&batch.schema())).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut refused = 0;
        for round in 0..20_000 {
            let mut bytes = good.clone();
            match round % 4 {
                0 => {
                    let i = next() as usize % bytes.len();
                    bytes[i] ^= 1 << (next() % 8);
                }
                1 => {
                    let i = next() as usize % bytes.len();
                    bytes[i] = next() as u8;
                }
                2 => {
                    let i = (next() as usize % (bytes.len() / 4)) * 4;
                    let value = [0u32, 1, 7, 0x7fff_ffff, 0xffff_fff0][next() as usize % 5];
                    bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
                }
                _ => bytes.truncate(next() as usize % bytes.len()),
            }
            match decoder.decode(bytes) {
                Ok(decoded) => assert_eq!(decoded.num_columns(), 4),
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 1000, "only {refused} corruptions were noticed");
        assert_eq!(decoder.decode(good).unwrap(), batch);
    }

    #[test]
    fn large_and_sliced_batches_round_trip_through_the_gathering_path() {
        use arrow::array::DictionaryArray;
        use arrow::datatypes::Int32Type;
        let n = 100_000;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "flag",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
        ]));
        let flags: DictionaryArray<Int32Type> = (0..n).map(|i| ["x", "y", "z"][i % 3]).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 7 != 0).then(|| format!("name {i}"))),
                )),
                Arc::new(flags),
            ],
        )
        .unwrap();
        assert!(batch.get_array_memory_size() >= GATHER_FROM_BYTES);
        let mut decoder = SchemaDecoder::from_ipc(encode_schema(&schema)).unwrap();
        for b in [
            batch.clone(),
            batch.slice(12_345, 60_000),
            batch.slice(99_990, 10),
        ] {
            assert_eq!(decoder.decode(encode_messages(&b)).unwrap(), b);
        }
    }
}
