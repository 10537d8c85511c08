//! The batches filters and sinks are given: every common type, with nulls.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

/// Rows in each sample batch.
pub const SAMPLE_ROWS: usize = 1000;

/// id (int64), name (utf8, some null), amount (float64), day (date32), flag (bool).
pub fn sample_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("day", DataType::Date32, true),
        Field::new("flag", DataType::Boolean, true),
    ]))
}

/// The `n`th sample batch (ids `n*SAMPLE_ROWS..`).
pub fn sample_batch(n: usize) -> RecordBatch {
    let start = (n * SAMPLE_ROWS) as i64;
    let ids: Vec<i64> = (start..start + SAMPLE_ROWS as i64).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter(
            ids.iter()
                .map(|i| (i % 7 != 0).then(|| format!("name-{i}"))),
        )),
        Arc::new(Float64Array::from_iter(
            ids.iter()
                .map(|i| (i % 11 != 0).then_some(*i as f64 * 1.25)),
        )),
        Arc::new(Date32Array::from_iter(
            ids.iter()
                .map(|i| (i % 13 != 0).then(|| 19_000 + (*i % 365) as i32)),
        )),
        Arc::new(BooleanArray::from_iter(
            ids.iter().map(|i| (i % 5 != 0).then_some(i % 2 == 0)),
        )),
    ];
    RecordBatch::try_new(sample_schema(), columns).expect("the sample is valid")
}

/// All of `batches` as one, for comparing runs.
pub fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Option<RecordBatch> {
    arrow::compute::concat_batches(schema, batches).ok()
}
