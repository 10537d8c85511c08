//! JSON Lines text to Arrow and back, for plugins with no Arrow library of
//! their own (`batch.from-json-lines`, `batch.to-json-lines`).

use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use arrow::json::writer::{
    Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder, WriterBuilder,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::Error;

/// Convert JSON Lines text to one batch of `schema`, natively.
///
/// # Errors
/// A data error naming what did not fit.
pub fn json_lines_to_batch(schema: SchemaRef, text: &str) -> Result<RecordBatch, Error> {
    // Decoded a bounded number of rows at a time, then put together: the
    // decoder's buffers never grow past one chunk's worth of rows.
    const CHUNK_ROWS: usize = 8192;
    // `with_flatten`: a top-level array of objects is rows too, so a
    // plugin can hand over a whole batch as one JSON array, which its JSON
    // library writes in one call instead of one call a row.
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(CHUNK_ROWS)
        .with_flatten(true)
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

/// One batch as JSON Lines text: an object a row, keys in schema order,
/// nulls written as `null`. Decimals are written as strings, so an author's
/// JSON parser never rounds money through a float, and everything else as
/// arrow-json writes it (dates and timestamps as strings, binary as hex);
/// [`json_lines_to_batch`] reads every one of them back.
///
/// # Errors
/// A data error for a type JSON cannot carry.
pub fn batch_to_json_lines(batch: &RecordBatch) -> Result<String, Error> {
    // Rows are about as long in JSON as in their Arrow buffers plus the
    // keys: reserve that once instead of growing by doubling.
    let keys: usize = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().len() + 4)
        .sum();
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + keys * batch.num_rows());
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(Arc::new(DecimalsAsStrings))
        .build::<_, LineDelimited>(&mut out);
    writer
        .write(batch)
        .and_then(|_| writer.finish())
        .map_err(|e| Error::data(format!("JSON Lines: {e}")))?;
    drop(writer);
    String::from_utf8(out).map_err(|e| Error::data(format!("JSON Lines: {e}")))
}

/// Writes decimal values as JSON strings (`"12.30"`) rather than numbers.
#[derive(Debug)]
struct DecimalsAsStrings;

impl EncoderFactory for DecimalsAsStrings {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, arrow::error::ArrowError> {
        match array.data_type() {
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => {
                let formatter = ArrayFormatter::try_new(array, &FormatOptions::new())?;
                let encoder: Box<dyn Encoder + 'a> = Box::new(QuotedDecimal(formatter));
                Ok(Some(NullableEncoder::new(encoder, array.nulls().cloned())))
            }
            _ => Ok(None),
        }
    }
}

struct QuotedDecimal<'a>(ArrayFormatter<'a>);

impl Encoder for QuotedDecimal<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        use std::io::Write;
        // A decimal's text is digits, a sign and a point: nothing to escape.
        let _ = write!(out, "\"{}\"", self.0.value(idx));
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
    fn a_json_array_of_rows_is_rows_too() {
        let text = "[{\"id\": 1, \"name\": \"a\"},{\"id\": 2}]\n[{\"id\": 3}]";
        let batch = json_lines_to_batch(schema(), text).unwrap();
        assert_eq!(batch.num_rows(), 3);
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values(), &[1, 2, 3]);
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

    #[test]
    fn rows_survive_the_round_trip_with_exact_decimals() {
        use arrow::array::{BinaryArray, Date32Array, Decimal128Array, TimestampMicrosecondArray};
        use arrow::datatypes::TimeUnit;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(15, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("raw", DataType::Binary, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![9_007_199_254_740_993, 2])),
                Arc::new(StringArray::from(vec![Some("a \"q\"\n"), None])),
                Arc::new(
                    Decimal128Array::from(vec![Some(123_456_789_012_345), None])
                        .with_precision_and_scale(15, 2)
                        .unwrap(),
                ),
                Arc::new(Date32Array::from(vec![Some(20_000), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_765_000_000_123_456), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
            ],
        )
        .unwrap();
        let text = batch_to_json_lines(&batch).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.contains("\"amount\":\"1234567890123.45\""), "{first}");
        assert!(first.contains("\"id\":9007199254740993"), "{first}");
        assert!(
            text.lines().nth(1).unwrap().contains("\"name\":null"),
            "{text}"
        );
        let back = json_lines_to_batch(schema, &text).unwrap();
        assert_eq!(back, batch);
    }
}
