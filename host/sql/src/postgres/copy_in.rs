//! Arrow batches in COPY's binary format, for `COPY … FROM STDIN`.
//!
//! Each batch column is cast to the Arrow form of its target column's type
//! (an `int32` column loads into `bigint`, a `string` into `uuid`), then
//! written row by row as PostgreSQL's binary representation. A value that
//! does not fit its column is an error naming the column and the row.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, IntervalMonthDayNanoArray,
    ListArray, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::types::PgType;

/// The header of a binary COPY stream: signature, flags, no extension.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a tuple with -1 fields.
pub const TRAILER: &[u8] = &[0xff, 0xff];

const EPOCH_DAYS: i32 = 10_957;
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A target column: its name, how it is written, and its element OID for
/// arrays.
#[derive(Debug, Clone)]
pub struct Target {
    /// The column's name.
    pub name: String,
    /// Its type: `None` means unconstrained `numeric` (written from text).
    pub ty: PgType,
    /// For arrays, the element type's OID.
    pub element_oid: u32,
}

/// A batch column ready to write.
enum Column {
    Bool(BooleanArray),
    Int2(Int16Array),
    Int4(Int32Array),
    Int8(Int64Array),
    Oid(UInt32Array),
    Float4(Float32Array),
    Float8(Float64Array),
    Decimal(Decimal128Array),
    /// `numeric` written from each value's decimal text.
    NumericText(StringArray),
    Text(StringArray),
    Jsonb(StringArray),
    Uuid(StringArray),
    Bytea(BinaryArray),
    Date(Date32Array),
    Time(Time64MicrosecondArray),
    Timestamp(TimestampMicrosecondArray),
    Interval(IntervalMonthDayNanoArray),
    List(ListArray, u32, Box<Column>),
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    cast_with_options(
        array,
        to,
        &CastOptions {
            safe: false,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())
}

impl Column {
    fn new(array: &ArrayRef, target: &Target) -> Result<Column, String> {
        Ok(match &target.ty {
            PgType::Bool => Column::Bool(cast(array, &DataType::Boolean)?.as_boolean().clone()),
            PgType::Int2 => Column::Int2(cast(array, &DataType::Int16)?.as_primitive().clone()),
            PgType::Int4 => Column::Int4(cast(array, &DataType::Int32)?.as_primitive().clone()),
            PgType::Int8 => Column::Int8(cast(array, &DataType::Int64)?.as_primitive().clone()),
            PgType::Oid => Column::Oid(cast(array, &DataType::UInt32)?.as_primitive().clone()),
            PgType::Float4 => {
                Column::Float4(cast(array, &DataType::Float32)?.as_primitive().clone())
            }
            PgType::Float8 => {
                Column::Float8(cast(array, &DataType::Float64)?.as_primitive().clone())
            }
            PgType::Numeric { .. } if matches!(array.data_type(), DataType::Decimal128(..)) => {
                Column::Decimal(array.as_primitive().clone())
            }
            PgType::Numeric { .. } => {
                Column::NumericText(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            PgType::Text | PgType::Json => {
                Column::Text(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            PgType::Jsonb => {
                Column::Jsonb(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            PgType::Uuid => Column::Uuid(cast(array, &DataType::Utf8)?.as_string::<i32>().clone()),
            PgType::Bytea => Column::Bytea(cast(array, &DataType::Binary)?.as_binary().clone()),
            PgType::Date => Column::Date(cast(array, &DataType::Date32)?.as_primitive().clone()),
            PgType::Time => {
                Column::Time(cast(array, &target.ty.arrow_type())?.as_primitive().clone())
            }
            PgType::Timestamp | PgType::Timestamptz => {
                // Both are microseconds since the epoch in UTC here; a
                // zoned source keeps its instant.
                let to = match array.data_type() {
                    DataType::Timestamp(_, tz) => {
                        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, tz.clone())
                    }
                    _ => target.ty.arrow_type(),
                };
                Column::Timestamp(cast(array, &to)?.as_primitive().clone())
            }
            PgType::Interval => {
                Column::Interval(cast(array, &target.ty.arrow_type())?.as_primitive().clone())
            }
            PgType::Array(element) => {
                let list = cast(array, &target.ty.arrow_type())?
                    .as_list::<i32>()
                    .clone();
                let values = Column::new(
                    list.values(),
                    &Target {
                        name: target.name.clone(),
                        ty: (**element).clone(),
                        element_oid: 0,
                    },
                )?;
                Column::List(list, target.element_oid, Box::new(values))
            }
        })
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            Column::Bool(a) => a.is_null(i),
            Column::Int2(a) => a.is_null(i),
            Column::Int4(a) => a.is_null(i),
            Column::Int8(a) => a.is_null(i),
            Column::Oid(a) => a.is_null(i),
            Column::Float4(a) => a.is_null(i),
            Column::Float8(a) => a.is_null(i),
            Column::Decimal(a) => a.is_null(i),
            Column::NumericText(a) | Column::Text(a) | Column::Jsonb(a) | Column::Uuid(a) => {
                a.is_null(i)
            }
            Column::Bytea(a) => a.is_null(i),
            Column::Date(a) => a.is_null(i),
            Column::Time(a) => a.is_null(i),
            Column::Timestamp(a) => a.is_null(i),
            Column::Interval(a) => a.is_null(i),
            Column::List(a, ..) => a.is_null(i),
        }
    }

    /// Append value `i` as a length-prefixed field.
    fn write(&self, i: usize, out: &mut Vec<u8>) -> Result<(), String> {
        if self.is_null(i) {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            return Ok(());
        }
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Column::Bool(a) => out.push(u8::from(a.value(i))),
            Column::Int2(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Int4(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Int8(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Oid(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Float4(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Float8(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Decimal(a) => numeric_from_decimal(a.value(i), a.scale(), out),
            Column::NumericText(a) => numeric_from_text(a.value(i), out)?,
            Column::Text(a) => out.extend_from_slice(a.value(i).as_bytes()),
            Column::Jsonb(a) => {
                out.push(1);
                out.extend_from_slice(a.value(i).as_bytes());
            }
            Column::Uuid(a) => out.extend_from_slice(&parse_uuid(a.value(i))?),
            Column::Bytea(a) => out.extend_from_slice(a.value(i)),
            Column::Date(a) => out.extend_from_slice(&(a.value(i) - EPOCH_DAYS).to_be_bytes()),
            Column::Time(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
            Column::Timestamp(a) => {
                out.extend_from_slice(&(a.value(i) - EPOCH_MICROS).to_be_bytes())
            }
            Column::Interval(a) => {
                let v = a.value(i);
                out.extend_from_slice(&(v.nanoseconds / 1000).to_be_bytes());
                out.extend_from_slice(&v.days.to_be_bytes());
                out.extend_from_slice(&v.months.to_be_bytes());
            }
            Column::List(a, element_oid, values) => {
                let offsets = a.value_offsets();
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                let has_null = (start..end).any(|j| values.is_null(j));
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&i32::from(has_null).to_be_bytes());
                out.extend_from_slice(&element_oid.to_be_bytes());
                out.extend_from_slice(&((end - start) as i32).to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                for j in start..end {
                    values.write(j, out)?;
                }
            }
        }
        let len = (out.len() - at - 4) as i32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// Append `batch`'s rows to `out` for `targets` (one per batch column, in
/// order).
///
/// # Errors
/// A message naming the column (and row) that does not fit.
pub fn encode(batch: &RecordBatch, targets: &[Target], out: &mut Vec<u8>) -> Result<(), String> {
    let columns = batch
        .columns()
        .iter()
        .zip(targets)
        .map(|(a, t)| Column::new(a, t).map_err(|e| format!("column `{}`: {e}", t.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let fields = (columns.len() as i16).to_be_bytes();
    for row in 0..batch.num_rows() {
        out.extend_from_slice(&fields);
        for (c, t) in columns.iter().zip(targets) {
            c.write(row, out)
                .map_err(|e| format!("column `{}`, row {}: {e}", t.name, row + 1))?;
        }
    }
    Ok(())
}

fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return Err(format!("`{s}` is not a UUID"));
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| format!("`{s}` is not a UUID"))?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| format!("`{s}` is not a UUID"))?;
    }
    Ok(out)
}

/// PostgreSQL's binary numeric from base-10 digits: `digits` (no sign, no
/// point) with `scale` of them after the point.
fn numeric_from_digits(negative: bool, digits: &str, scale: usize, out: &mut Vec<u8>) {
    let digits = digits.trim_start_matches('0');
    // Pad so the integer part and the fraction are whole groups of four.
    let int_len = digits.len().saturating_sub(scale);
    let frac = &digits[int_len..];
    let frac = format!("{}{frac}", "0".repeat(scale - frac.len()));
    let int = &digits[..int_len];
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let all = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
    let mut groups: Vec<i16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| {
            std::str::from_utf8(c)
                .expect("digits")
                .parse()
                .expect("digits")
        })
        .collect();
    let mut weight = ((int_pad + int.len()) / 4) as i16 - 1;
    // Strip leading and trailing zero groups.
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

fn numeric_from_decimal(value: i128, scale: i8, out: &mut Vec<u8>) {
    let digits = value.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    numeric_from_digits(value < 0, &digits, scale, out);
}

fn numeric_from_text(s: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let t = s.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(format!("`{s}` is not a decimal number"));
    }
    numeric_from_digits(negative, &format!("{int}{frac}"), frac.len(), out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        numeric_from_text(s, &mut out).unwrap();
        out
    }

    fn words(v: &[u8]) -> Vec<i16> {
        v.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_in_base_10000() {
        // ndigits, weight, sign, dscale, digits…
        assert_eq!(words(&numeric("12345.67")), [3, 1, 0, 2, 1, 2345, 6700]);
        assert_eq!(words(&numeric("-0.0005")), [1, -1, 0x4000, 4, 5]);
        assert_eq!(words(&numeric("0")), [0, 0, 0, 0]);
        assert_eq!(words(&numeric("10000")), [1, 1, 0, 0, 1]);
        let mut out = Vec::new();
        numeric_from_decimal(1_234_567, 2, &mut out);
        assert_eq!(out, numeric("12345.67"));
        assert!(numeric_from_text("1e5", &mut Vec::new()).is_err());
    }

    #[test]
    fn uuids_parse() {
        let b = parse_uuid("00010203-0405-0607-0809-0a0b0c0d0e0f").unwrap();
        assert_eq!(b[15], 15);
        assert!(parse_uuid("nope").is_err());
    }
}
