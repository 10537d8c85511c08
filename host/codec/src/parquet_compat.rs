//! Arrow types Parquet cannot store, in the form the Parquet writer takes.
//!
//! Parquet's INTERVAL is unsigned months/days/milliseconds: it cannot hold
//! a negative or sub-millisecond interval, and arrow-rs does not write
//! Arrow's month-day-nano intervals at all. Rather than fail a run or round
//! values, such columns are written as ISO 8601 durations (`P1M2DT3.5S`),
//! which databases and dataframe libraries read back exactly.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, IntervalMonthDayNanoArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef};
use arrow::error::ArrowError;

fn unwritable(dt: &DataType) -> bool {
    matches!(dt, DataType::Interval(IntervalUnit::MonthDayNano))
}

/// The schema the Parquet file gets for batches of `schema`.
pub fn writable_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| unwritable(f.data_type())) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if unwritable(f.data_type()) {
                f.as_ref().clone().with_data_type(DataType::Utf8)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with its unwritable columns converted.
///
/// # Errors
/// Never for the conversions done here; typed for the writer's signature.
pub fn writable_batch(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| unwritable(f.data_type())) {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(
            |c| match c.as_any().downcast_ref::<IntervalMonthDayNanoArray>() {
                Some(intervals) => Arc::new(
                    intervals
                        .iter()
                        .map(|v| v.map(|v| iso_duration(v.months, v.days, v.nanoseconds)))
                        .collect::<StringArray>(),
                ) as ArrayRef,
                None => c.clone(),
            },
        )
        .collect();
    RecordBatch::try_new(writable_schema(&schema), columns)
}

/// `P1M2DT3.5S`; zero is `PT0S`.
pub fn iso_duration(months: i32, days: i32, nanos: i64) -> String {
    let mut out = String::from("P");
    if months != 0 {
        out.push_str(&format!("{months}M"));
    }
    if days != 0 {
        out.push_str(&format!("{days}D"));
    }
    if nanos != 0 || out.len() == 1 {
        let sign = if nanos < 0 { "-" } else { "" };
        let abs = nanos.unsigned_abs();
        let (secs, frac) = (abs / 1_000_000_000, abs % 1_000_000_000);
        out.push('T');
        out.push_str(sign);
        out.push_str(&secs.to_string());
        if frac != 0 {
            let digits = format!("{frac:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        out.push('S');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(iso_duration(1, 2, 3_500_000_000), "P1M2DT3.5S");
        assert_eq!(iso_duration(0, 0, 0), "PT0S");
        assert_eq!(iso_duration(-1, 0, -1_000), "P-1MT-0.000001S");
        assert_eq!(iso_duration(0, 3, 0), "P3D");
    }
}
