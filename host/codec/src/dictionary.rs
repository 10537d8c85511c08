//! Which Parquet columns to write without a dictionary, judged from the
//! first batch.
//!
//! The Parquet writer dictionary-encodes every column until the column's
//! dictionary passes the page limit (1 MiB), then falls back to plain
//! values for the rest of the row group. A column of ids or prices
//! therefore hashes its first 131,072 values in every row group for
//! nothing, and leaves a dictionary page no reader needs: on one core that
//! was a tenth of converting the benchmark's CSV to Parquet, and 7% of the
//! file. Columns whose first batch already holds more distinct values than
//! a dictionary can usefully take are written plain from the start; every
//! other column keeps the writer's usual behaviour, including its fallback.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, RandomState};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
};

/// Rows of the first batch looked at.
const SAMPLE_ROWS: usize = 65_536;

/// Fewer rows than this say too little to change anything.
const MIN_SAMPLE_ROWS: usize = 1_024;

/// The top-level columns of `batch` to write without a dictionary, for
/// row groups of `group_rows` rows and dictionary pages of at most
/// `limit_bytes`.
///
/// A column goes plain when its sample has more distinct values than a
/// column of `c` values drawn at random would show, `c` being what a
/// useful dictionary can hold: as many values as fit the page limit, and
/// no more than half a row group (past that most values are written once
/// anyway, and the dictionary only adds a page).
pub(crate) fn plain_columns(
    batch: &RecordBatch,
    group_rows: usize,
    limit_bytes: usize,
) -> Vec<usize> {
    let rows = batch.num_rows().min(SAMPLE_ROWS);
    if rows < MIN_SAMPLE_ROWS {
        return Vec::new();
    }
    let hasher = RandomState::new();
    batch
        .columns()
        .iter()
        .enumerate()
        .filter_map(|(i, column)| {
            let column = column.slice(0, rows);
            let (distinct, bytes) = distinct(column.as_ref(), &hasher)?;
            let width = (bytes / distinct.max(1)).max(1);
            let useful = (limit_bytes / width).min(group_rows / 2).max(1);
            (distinct as f64 > expected_distinct(useful as f64, rows as f64)).then_some(i)
        })
        .collect()
}

/// Distinct values expected among `draws` taken at random from
/// `values` equally likely ones.
fn expected_distinct(values: f64, draws: f64) -> f64 {
    values * (1.0 - (-draws / values).exp())
}

/// Distinct non-null values of a column and the bytes they take, for the
/// types a dictionary is worth judging; `None` for the rest (booleans,
/// nested types), which keep the writer's default.
fn distinct(column: &dyn Array, hasher: &RandomState) -> Option<(usize, usize)> {
    fn primitive<T: ArrowPrimitiveType>(column: &dyn Array) -> (usize, usize)
    where
        T::Native: Hash + Eq,
    {
        let values = column.as_primitive::<T>();
        let seen: HashSet<T::Native> = values.iter().flatten().collect();
        (seen.len(), seen.len() * std::mem::size_of::<T::Native>())
    }
    fn floats<T: ArrowPrimitiveType>(
        column: &dyn Array,
        bits: impl Fn(T::Native) -> u64,
    ) -> (usize, usize) {
        let values = column.as_primitive::<T>();
        let seen: HashSet<u64> = values.iter().flatten().map(bits).collect();
        (seen.len(), seen.len() * std::mem::size_of::<T::Native>())
    }
    fn hashed<'a>(
        values: impl Iterator<Item = Option<&'a [u8]>>,
        hasher: &RandomState,
    ) -> (usize, usize) {
        let mut seen = HashSet::new();
        let mut bytes = 0;
        for v in values.flatten() {
            if seen.insert(hasher.hash_one(v)) {
                bytes += v.len() + 4;
            }
        }
        (seen.len(), bytes)
    }
    Some(match column.data_type() {
        DataType::Int16 => primitive::<Int16Type>(column),
        DataType::Int32 => primitive::<Int32Type>(column),
        DataType::Int64 => primitive::<Int64Type>(column),
        DataType::UInt16 => primitive::<UInt16Type>(column),
        DataType::UInt32 => primitive::<UInt32Type>(column),
        DataType::UInt64 => primitive::<UInt64Type>(column),
        DataType::Date32 => primitive::<Date32Type>(column),
        DataType::Date64 => primitive::<Date64Type>(column),
        DataType::Decimal128(_, _) => primitive::<Decimal128Type>(column),
        DataType::Timestamp(unit, _) => match unit {
            arrow::datatypes::TimeUnit::Second => primitive::<TimestampSecondType>(column),
            arrow::datatypes::TimeUnit::Millisecond => {
                primitive::<TimestampMillisecondType>(column)
            }
            arrow::datatypes::TimeUnit::Microsecond => {
                primitive::<TimestampMicrosecondType>(column)
            }
            arrow::datatypes::TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(column),
        },
        DataType::Float32 => floats::<Float32Type>(column, |v| u64::from(v.to_bits())),
        DataType::Float64 => floats::<Float64Type>(column, f64::to_bits),
        DataType::Utf8 => hashed(
            column
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
            hasher,
        ),
        DataType::LargeUtf8 => hashed(
            column
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
            hasher,
        ),
        DataType::Binary => hashed(column.as_binary::<i32>().iter(), hasher),
        DataType::LargeBinary => hashed(column.as_binary::<i64>().iter(), hasher),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn unique_columns_go_plain_and_repeated_ones_keep_their_dictionary() {
        let rows = 65_536;
        let random =
            |i: usize, modulo: u64| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % modulo;
        let b = batch(vec![
            ("id", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
            (
                "price",
                Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| random(i, 1 << 40) as f64 / 100.0),
                )),
            ),
            (
                "flag",
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| ["a", "b", "c"][i % 3]),
                )),
            ),
            // 60,000 distinct ints fit a 1 MiB dictionary (480 KB): keep it.
            (
                "code",
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|i| random(i, 60_000) as i64),
                )),
            ),
            // 100,000 distinct 14-byte strings do not.
            (
                "comment",
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("comment-{:06}", random(i, 100_000))),
                )),
            ),
            (
                "date",
                Arc::new(arrow::array::Date32Array::from_iter_values(
                    (0..rows).map(|i| random(i, 2_500) as i32),
                )),
            ),
        ]);
        assert_eq!(plain_columns(&b, 1 << 20, 1 << 20), vec![0, 1, 4]);
        // Small row groups: a dictionary of 60,000 values is not worth it
        // for 100,000 rows.
        assert_eq!(plain_columns(&b, 100_000, 1 << 20), vec![0, 1, 3, 4]);
        // A small first batch changes nothing.
        assert!(plain_columns(&b.slice(0, 100), 1 << 20, 1 << 20).is_empty());
    }
}
