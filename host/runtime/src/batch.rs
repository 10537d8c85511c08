//! Host-owned record batches and their Arrow IPC encoding.
//!
//! Batches cross the WIT boundary as `batch` resources: the rows stay here,
//! and a plugin copies them into its memory (as IPC) only when it asks.

use std::io::Cursor;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

/// A record batch held by the host on behalf of a plugin.
#[derive(Debug, Clone)]
pub struct Batch(pub RecordBatch);

/// Decode one record batch from an Arrow IPC stream, validating every buffer.
///
/// # Errors
/// A message saying what is wrong: not IPC, no batch, more than one batch.
pub fn decode_batch(ipc: &[u8]) -> Result<RecordBatch, String> {
    let mut reader =
        StreamReader::try_new(Cursor::new(ipc), None).map_err(|e| format!("not Arrow IPC: {e}"))?;
    let batch = match reader.next() {
        Some(Ok(batch)) => batch,
        Some(Err(e)) => return Err(format!("bad record batch: {e}")),
        None => return Err("IPC stream holds a schema but no record batch".into()),
    };
    if reader.next().is_some() {
        return Err("IPC stream holds more than one record batch".into());
    }
    Ok(batch)
}

/// Encode a batch as an Arrow IPC stream (schema message + the batch).
pub fn encode_batch(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    {
        let mut writer = StreamWriter::try_new(&mut out, &batch.schema())
            .expect("writing IPC to a Vec cannot fail for a valid schema");
        writer
            .write(batch)
            .expect("writing IPC to a Vec cannot fail for a valid batch");
        writer.finish().expect("finishing IPC to a Vec cannot fail");
    }
    out
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

/// The same schema, ignoring metadata and nullability: what "matches" means
/// between stages.
pub fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use std::sync::Arc;

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
    fn round_trip() {
        let batch = sample();
        let back = decode_batch(&encode_batch(&batch)).unwrap();
        assert_eq!(batch, back);
        let schema = decode_schema(&encode_schema(&batch.schema())).unwrap();
        assert_eq!(*schema, *batch.schema());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_batch(b"definitely not arrow").is_err());
        let mut bytes = encode_batch(&sample());
        // Truncate and corrupt: must still be an error.
        bytes.truncate(bytes.len() / 2);
        assert!(decode_batch(&bytes).is_err());
        assert!(decode_batch(&encode_schema(&sample().schema())).is_err());
    }
}
