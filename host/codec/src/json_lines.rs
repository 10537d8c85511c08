//! JSON Lines text to Arrow, for plugins with no Arrow library of their
//! own (`batch.from-json-lines`).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::Error;

/// Convert JSON Lines text to one batch of `schema`, natively.
///
/// # Errors
/// A data error naming what did not fit.
pub fn json_lines_to_batch(schema: SchemaRef, text: &str) -> Result<RecordBatch, Error> {
    // Decoded a bounded number of rows at a time, then put together: the
    // decoder's buffers never grow past one chunk's worth of rows.
    const CHUNK_ROWS: usize = 8192;
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(CHUNK_ROWS)
        .build_decoder()
        .map_err(|e| Error::data(e.to_string()))?;
    let fail = |e: arrow::error::ArrowError| Error::data(format!("JSON Lines: {e}"));
    let mut chunks = Vec::new();
    let mut rest = text.as_bytes();
    loop {
        let read = decoder.decode(rest).map_err(fail)?;
        rest = &rest[read..];
        if decoder.len() >= CHUNK_ROWS || rest.is_empty() {
            if let Some(batch) = decoder.flush().map_err(fail)? {
                chunks.push(batch);
            }
        } else if read == 0 {
            return Err(Error::data("JSON Lines: the decoder made no progress"));
        }
        if rest.is_empty() {
            break;
        }
    }
    match chunks.len() {
        0 => Ok(RecordBatch::new_empty(schema)),
        1 => Ok(chunks.pop().expect("one chunk")),
        _ => arrow::compute::concat_batches(&schema, &chunks)
            .map_err(|e| Error::data(format!("JSON Lines: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn many_rows_decode_in_chunks_into_one_batch() {
        let rows = 20_000;
        let text: String = (0..rows)
            .map(|i| format!("{{\"id\": {i}, \"name\": \"n{i}\"}}\n"))
            .collect();
        let batch = json_lines_to_batch(schema(), &text).unwrap();
        assert_eq!(batch.num_rows(), rows);
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.value(rows - 1), rows as i64 - 1);
        let names = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(names.value(12_345), "n12345");
    }

    #[test]
    fn empty_text_missing_newline_and_bad_rows() {
        assert_eq!(json_lines_to_batch(schema(), "").unwrap().num_rows(), 0);
        let one = json_lines_to_batch(schema(), "{\"id\": 1}").unwrap();
        assert_eq!(one.num_rows(), 1);
        assert!(one.column(1).is_null(0));
        let err = json_lines_to_batch(schema(), "{\"id\": 1}\n{\"id\": \"x\"}\n").unwrap_err();
        assert!(err.message.contains("JSON Lines"), "{}", err.message);
        assert!(json_lines_to_batch(schema(), "{\"name\": \"no id\"}\n").is_err());
    }
}
