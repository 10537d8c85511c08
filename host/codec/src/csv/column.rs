//! One Arrow column being built from CSV fields.
//!
//! `int64`, `float64`, `date32`, `boolean` and `utf8` (what inference gives
//! most files) are parsed as each field is read. Every other type Arrow's
//! CSV reader knows is kept as text and parsed when the batch is finished,
//! with the same Arrow parsers that reader uses, so a column reads the same
//! whichever path it takes.

use std::sync::Arc;

use arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use arrow::array::{
    ArrayRef, BooleanArray, NullArray, PrimitiveArray, PrimitiveBuilder, StringArray,
    StringDictionaryBuilder, StringViewBuilder,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::kernels::cast_utils::{Parser, parse_decimal, string_to_datetime};
use arrow::datatypes::*;
use arrow::error::ArrowError;

use super::scan;

/// Why a field could not go into its column.
pub(crate) struct Refused;

/// A column of the batch being read.
pub(crate) enum Column {
    Int64(Values<i64>),
    Float64(Values<f64>),
    Date32(Values<i32>),
    Boolean {
        values: BooleanBufferBuilder,
        nulls: NullBufferBuilder,
    },
    Utf8(Text),
    /// Parsed at the end of the batch as `DataType`.
    Later(DataType, Text),
}

/// Fixed-width values and their validity.
pub(crate) struct Values<T> {
    values: Vec<T>,
    nulls: NullBufferBuilder,
}

/// Field bytes end to end, with their offsets and validity.
pub(crate) struct Text {
    offsets: Vec<i32>,
    bytes: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl<T: Default> Values<T> {
    fn new(capacity: usize) -> Self {
        Values {
            values: Vec::with_capacity(capacity),
            nulls: NullBufferBuilder::new(capacity),
        }
    }

    #[inline]
    fn push(&mut self, value: Option<T>) {
        match value {
            Some(v) => {
                self.values.push(v);
                self.nulls.append_non_null();
            }
            None => {
                self.values.push(T::default());
                self.nulls.append_null();
            }
        }
    }
}

impl Text {
    fn new(capacity: usize) -> Self {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        Text {
            offsets,
            bytes: Vec::with_capacity(capacity * 8),
            nulls: NullBufferBuilder::new(capacity),
        }
    }

    #[inline]
    fn push(&mut self, value: Option<&[u8]>) -> Result<(), Refused> {
        match value {
            Some(v) => {
                self.bytes.extend_from_slice(v);
                self.nulls.append_non_null();
            }
            None => self.nulls.append_null(),
        }
        let end = i32::try_from(self.bytes.len()).map_err(|_| Refused)?;
        self.offsets.push(end);
        Ok(())
    }

    fn truncate(&mut self, rows: usize) {
        self.offsets.truncate(rows + 1);
        self.bytes.truncate(self.offsets[rows] as usize);
        self.nulls.truncate(rows);
    }

    fn value(&self, row: usize) -> &[u8] {
        &self.bytes[self.offsets[row] as usize..self.offsets[row + 1] as usize]
    }

    fn is_null(&self, row: usize) -> bool {
        !self.nulls.is_valid(row)
    }

    fn rows(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Whether the CSV reader can read a column of this type.
pub(crate) fn supported(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Date32
        | Date64
        | Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
        | Timestamp(_, _)
        | Null
        | Utf8
        | Utf8View
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => true,
        Dictionary(key, value) => key.is_dictionary_key_type() && value.as_ref() == &Utf8,
        _ => false,
    }
}

impl Column {
    pub(crate) fn new(data_type: &DataType, capacity: usize) -> Column {
        match data_type {
            DataType::Int64 => Column::Int64(Values::new(capacity)),
            DataType::Float64 => Column::Float64(Values::new(capacity)),
            DataType::Date32 => Column::Date32(Values::new(capacity)),
            DataType::Boolean => Column::Boolean {
                values: BooleanBufferBuilder::new(capacity),
                nulls: NullBufferBuilder::new(capacity),
            },
            DataType::Utf8 => Column::Utf8(Text::new(capacity)),
            other => Column::Later(other.clone(), Text::new(capacity)),
        }
    }

    /// Add one field; `None` is a null.
    #[inline]
    pub(crate) fn push(&mut self, value: Option<&[u8]>) -> Result<(), Refused> {
        match self {
            Column::Int64(c) => c.push(parse(value, scan::int64, Int64Type::parse)?),
            Column::Float64(c) => c.push(parse(value, scan::float64, Float64Type::parse)?),
            Column::Date32(c) => c.push(parse(value, scan::date32, Date32Type::parse)?),
            Column::Boolean { values, nulls } => match value {
                Some(v) => {
                    values.append(boolean(v).ok_or(Refused)?);
                    nulls.append_non_null();
                }
                None => {
                    values.append(false);
                    nulls.append_null();
                }
            },
            Column::Utf8(text) | Column::Later(_, text) => text.push(value)?,
        }
        Ok(())
    }

    /// Forget every row from `rows` on (a record cut short by the end of
    /// what was read so far; it is read again whole).
    pub(crate) fn truncate(&mut self, rows: usize) {
        match self {
            Column::Int64(c) => truncate_values(c, rows),
            Column::Float64(c) => truncate_values(c, rows),
            Column::Date32(c) => truncate_values(c, rows),
            Column::Boolean { values, nulls } => {
                values.truncate(rows);
                nulls.truncate(rows);
            }
            Column::Utf8(text) | Column::Later(_, text) => text.truncate(rows),
        }
    }

    /// The column's array; the builder starts again, empty. An error names
    /// the row (of this batch) that does not parse and why.
    pub(crate) fn finish(
        &mut self,
        capacity: usize,
        data_type: &DataType,
    ) -> Result<ArrayRef, (usize, String)> {
        let fresh = Column::new(data_type, capacity);
        Ok(match std::mem::replace(self, fresh) {
            Column::Int64(c) => Arc::new(primitive::<Int64Type>(c)),
            Column::Float64(c) => Arc::new(primitive::<Float64Type>(c)),
            Column::Date32(c) => Arc::new(primitive::<Date32Type>(c)),
            Column::Boolean {
                mut values,
                mut nulls,
            } => Arc::new(BooleanArray::new(values.finish(), nulls.finish())),
            Column::Utf8(mut text) => {
                let nulls = text.nulls.finish();
                let offsets = OffsetBuffer::new(ScalarBuffer::from(text.offsets));
                let bytes = Buffer::from_vec(text.bytes);
                // Arrow checks the bytes are UTF-8 and every value starts on
                // a character; if not, find the row that is not.
                match StringArray::try_new(offsets.clone(), bytes.clone(), nulls) {
                    Ok(array) => Arc::new(array),
                    Err(_) => {
                        let row = offsets
                            .windows(2)
                            .position(|w| {
                                std::str::from_utf8(&bytes[w[0] as usize..w[1] as usize]).is_err()
                            })
                            .unwrap_or(0);
                        return Err((row, "invalid UTF-8".into()));
                    }
                }
            }
            Column::Later(data_type, text) => later(&data_type, &text)?,
        })
    }
}

fn truncate_values<T>(c: &mut Values<T>, rows: usize) {
    c.values.truncate(rows);
    c.nulls.truncate(rows);
}

fn primitive<T: ArrowPrimitiveType>(mut c: Values<T::Native>) -> PrimitiveArray<T> {
    PrimitiveArray::new(ScalarBuffer::from(c.values), c.nulls.finish())
}

/// A field through the fast parser, then Arrow's.
#[inline(always)]
fn parse<T>(
    value: Option<&[u8]>,
    fast: impl Fn(&[u8]) -> Option<T>,
    arrow: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Refused> {
    let Some(v) = value else { return Ok(None) };
    if let Some(parsed) = fast(v) {
        return Ok(Some(parsed));
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(arrow)
        .map(Some)
        .ok_or(Refused)
}

/// `true` or `false` in any case, as Arrow's CSV reader reads them.
fn boolean(v: &[u8]) -> Option<bool> {
    if v.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else if v.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else {
        None
    }
}

/// Each row's text as a `&str` (`None` for nulls), or the row that is not UTF-8.
fn strings(text: &Text) -> Result<Vec<Option<&str>>, (usize, String)> {
    (0..text.rows())
        .map(|row| {
            if text.is_null(row) {
                return Ok(None);
            }
            std::str::from_utf8(text.value(row))
                .map(Some)
                .map_err(|_| (row, "invalid UTF-8".to_string()))
        })
        .collect()
}

/// A column of any other type, from its text, with Arrow's parsers.
fn later(data_type: &DataType, text: &Text) -> Result<ArrayRef, (usize, String)> {
    use DataType::*;
    let rows = strings(text)?;
    Ok(match data_type {
        Int8 => Arc::new(parsed::<Int8Type>(&rows)?),
        Int16 => Arc::new(parsed::<Int16Type>(&rows)?),
        Int32 => Arc::new(parsed::<Int32Type>(&rows)?),
        UInt8 => Arc::new(parsed::<UInt8Type>(&rows)?),
        UInt16 => Arc::new(parsed::<UInt16Type>(&rows)?),
        UInt32 => Arc::new(parsed::<UInt32Type>(&rows)?),
        UInt64 => Arc::new(parsed::<UInt64Type>(&rows)?),
        Float16 => Arc::new(parsed::<Float16Type>(&rows)?),
        Float32 => Arc::new(parsed::<Float32Type>(&rows)?),
        Date64 => Arc::new(parsed::<Date64Type>(&rows)?),
        Time32(TimeUnit::Second) => Arc::new(parsed::<Time32SecondType>(&rows)?),
        Time32(TimeUnit::Millisecond) => Arc::new(parsed::<Time32MillisecondType>(&rows)?),
        Time64(TimeUnit::Microsecond) => Arc::new(parsed::<Time64MicrosecondType>(&rows)?),
        Time64(TimeUnit::Nanosecond) => Arc::new(parsed::<Time64NanosecondType>(&rows)?),
        Timestamp(unit, tz) => timestamps(*unit, tz.as_deref(), &rows)?,
        Decimal32(p, s) => Arc::new(decimals::<Decimal32Type>(&rows, *p, *s)?),
        Decimal64(p, s) => Arc::new(decimals::<Decimal64Type>(&rows, *p, *s)?),
        Decimal128(p, s) => Arc::new(decimals::<Decimal128Type>(&rows, *p, *s)?),
        Decimal256(p, s) => Arc::new(decimals::<Decimal256Type>(&rows, *p, *s)?),
        Utf8View => {
            let mut b = StringViewBuilder::with_capacity(rows.len());
            rows.iter().for_each(|v| b.append_option(*v));
            Arc::new(b.finish())
        }
        Dictionary(key, _) => dictionary(key, &rows)?,
        Null => Arc::new(NullArray::new(rows.len())),
        other => return Err((0, format!("CSV cannot hold {other} values"))),
    })
}

fn parsed<T: ArrowPrimitiveType + Parser>(
    rows: &[Option<&str>],
) -> Result<PrimitiveArray<T>, (usize, String)> {
    let mut b = PrimitiveBuilder::<T>::with_capacity(rows.len());
    for (row, v) in rows.iter().enumerate() {
        match v {
            None => b.append_null(),
            Some(s) => b.append_value(T::parse(s).ok_or_else(|| (row, refused(s, &T::DATA_TYPE)))?),
        }
    }
    Ok(b.finish())
}

fn decimals<T: DecimalType>(
    rows: &[Option<&str>],
    precision: u8,
    scale: i8,
) -> Result<PrimitiveArray<T>, (usize, String)> {
    let mut b = PrimitiveBuilder::<T>::with_capacity(rows.len());
    for (row, v) in rows.iter().enumerate() {
        match v {
            None => b.append_null(),
            Some(s) => b.append_value(
                parse_decimal::<T>(s, precision, scale).map_err(|e| (row, e.to_string()))?,
            ),
        }
    }
    b.finish()
        .with_precision_and_scale(precision, scale)
        .map_err(|e| (0, e.to_string()))
}

fn timestamps(
    unit: TimeUnit,
    tz: Option<&str>,
    rows: &[Option<&str>],
) -> Result<ArrayRef, (usize, String)> {
    fn build<T: ArrowTimestampType, Z: chrono::TimeZone>(
        zone: &Z,
        rows: &[Option<&str>],
    ) -> Result<PrimitiveArray<T>, (usize, String)> {
        let mut b = PrimitiveBuilder::<T>::with_capacity(rows.len());
        for (row, v) in rows.iter().enumerate() {
            let Some(s) = v else {
                b.append_null();
                continue;
            };
            let at = string_to_datetime(zone, s).map_err(|e| (row, e.to_string()))?;
            let value = match T::UNIT {
                TimeUnit::Second => Some(at.timestamp()),
                TimeUnit::Millisecond => Some(at.timestamp_millis()),
                TimeUnit::Microsecond => Some(at.timestamp_micros()),
                TimeUnit::Nanosecond => at.timestamp_nanos_opt(),
            };
            b.append_value(
                value.ok_or_else(|| (row, format!("{s} does not fit in 64-bit nanoseconds")))?,
            );
        }
        Ok(b.finish())
    }
    fn of_unit<Z: chrono::TimeZone>(
        unit: TimeUnit,
        zone: &Z,
        tz: Option<&str>,
        rows: &[Option<&str>],
    ) -> Result<ArrayRef, (usize, String)> {
        let tz = tz.map(Arc::<str>::from);
        Ok(match unit {
            TimeUnit::Second => {
                Arc::new(build::<TimestampSecondType, _>(zone, rows)?.with_timezone_opt(tz))
            }
            TimeUnit::Millisecond => {
                Arc::new(build::<TimestampMillisecondType, _>(zone, rows)?.with_timezone_opt(tz))
            }
            TimeUnit::Microsecond => {
                Arc::new(build::<TimestampMicrosecondType, _>(zone, rows)?.with_timezone_opt(tz))
            }
            TimeUnit::Nanosecond => {
                Arc::new(build::<TimestampNanosecondType, _>(zone, rows)?.with_timezone_opt(tz))
            }
        })
    }
    match tz {
        None => of_unit(unit, &chrono::Utc, None, rows),
        Some(name) => {
            let zone: arrow::array::timezone::Tz =
                name.parse().map_err(|e: ArrowError| (0, e.to_string()))?;
            of_unit(unit, &zone, Some(name), rows)
        }
    }
}

fn dictionary(key: &DataType, rows: &[Option<&str>]) -> Result<ArrayRef, (usize, String)> {
    fn build<K: ArrowDictionaryKeyType>(
        rows: &[Option<&str>],
    ) -> Result<ArrayRef, (usize, String)> {
        let mut b = StringDictionaryBuilder::<K>::with_capacity(rows.len(), 256, 1024);
        for (row, v) in rows.iter().enumerate() {
            match v {
                None => b.append_null(),
                Some(s) => {
                    b.append(s).map_err(|e| (row, e.to_string()))?;
                }
            }
        }
        Ok(Arc::new(b.finish()))
    }
    match key {
        DataType::Int8 => build::<Int8Type>(rows),
        DataType::Int16 => build::<Int16Type>(rows),
        DataType::Int32 => build::<Int32Type>(rows),
        DataType::Int64 => build::<Int64Type>(rows),
        DataType::UInt8 => build::<UInt8Type>(rows),
        DataType::UInt16 => build::<UInt16Type>(rows),
        DataType::UInt32 => build::<UInt32Type>(rows),
        DataType::UInt64 => build::<UInt64Type>(rows),
        other => Err((0, format!("{other} cannot key a dictionary"))),
    }
}

/// What a refused field says.
pub(crate) fn refused(value: &str, data_type: &DataType) -> String {
    format!(
        "cannot read {value:?} as {}",
        sluice_types::type_name(data_type)
    )
}
