//! COPY's binary format, decoded straight into Arrow builders.
//!
//! `COPY (…) TO STDOUT (FORMAT binary)` is PostgreSQL's fastest way out:
//! no text formatting on the server, no parsing here beyond reading
//! big-endian fields. Rows may be split across the chunks the connection
//! delivers; an incomplete row waits for the next chunk.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder,
    ListArray, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow::datatypes::{Field, IntervalMonthDayNano, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};

use super::types::PgType;

/// The 11-byte signature that opens a binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Days from 1970-01-01 (Arrow) to 2000-01-01 (PostgreSQL).
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One result column: its name and how its values are read.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// The column's name in the result.
    pub name: String,
    /// Its mapped type.
    pub ty: PgType,
}

/// Decodes a binary COPY stream into record batches of a fixed schema.
pub struct CopyDecoder {
    specs: Vec<ColumnSpec>,
    schema: SchemaRef,
    columns: Vec<Values>,
    pending: Vec<u8>,
    pos: usize,
    header_read: bool,
    finished: bool,
    rows: usize,
    /// Rows decoded before the current batch, for error messages.
    rows_before: u64,
}

impl CopyDecoder {
    /// A decoder for rows of these columns.
    pub fn new(specs: Vec<ColumnSpec>) -> Self {
        let schema = Arc::new(Schema::new(
            specs
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), true))
                .collect::<Vec<_>>(),
        ));
        let columns = specs.iter().map(|c| Values::new(&c.ty)).collect();
        CopyDecoder {
            specs,
            schema,
            columns,
            pending: Vec::new(),
            pos: 0,
            header_read: false,
            finished: false,
            rows: 0,
            rows_before: 0,
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows decoded into the current batch.
    pub fn buffered_rows(&self) -> usize {
        self.rows
    }

    /// Whether the end-of-data trailer was read.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Append bytes received from the server.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos >= self.pending.len() / 2 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(chunk);
    }

    /// Decode complete rows until the batch holds `max_rows` or the bytes
    /// run out.
    ///
    /// # Errors
    /// A message naming the row and column that could not be read.
    pub fn decode(&mut self, max_rows: usize) -> Result<(), String> {
        if !self.header_read && !self.read_header()? {
            return Ok(());
        }
        while !self.finished && self.rows < max_rows {
            let Some(end) = self.complete_row()? else {
                break;
            };
            let row = self.rows_before + self.rows as u64 + 1;
            let mut at = self.pos;
            let count = i16::from_be_bytes([self.pending[at], self.pending[at + 1]]);
            at += 2;
            if count == -1 {
                self.finished = true;
                self.pos = end;
                break;
            }
            for (i, column) in self.columns.iter_mut().enumerate() {
                let len = i32::from_be_bytes(self.pending[at..at + 4].try_into().expect("4 bytes"));
                at += 4;
                let value = if len < 0 {
                    None
                } else {
                    let v = &self.pending[at..at + len as usize];
                    at += len as usize;
                    Some(v)
                };
                column
                    .push(value)
                    .map_err(|e| format!("row {row}, column `{}`: {e}", self.specs[i].name))?;
            }
            self.pos = end;
            self.rows += 1;
        }
        Ok(())
    }

    /// The rows decoded so far, as one batch; the decoder starts a new one.
    ///
    /// # Errors
    /// When the columns do not form a valid batch (a bug, reported as such).
    pub fn take_batch(&mut self) -> Result<RecordBatch, String> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Values::finish).collect();
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )
        .map_err(|e| format!("building a batch from COPY rows: {e}"))?;
        self.rows_before += self.rows as u64;
        self.rows = 0;
        Ok(batch)
    }

    fn read_header(&mut self) -> Result<bool, String> {
        let buf = &self.pending[self.pos..];
        if buf.len() < SIGNATURE.len() + 8 {
            return Ok(false);
        }
        if &buf[..SIGNATURE.len()] != SIGNATURE {
            return Err("the server's COPY output is not in binary format".into());
        }
        let ext = u32::from_be_bytes(buf[15..19].try_into().expect("4 bytes")) as usize;
        if buf.len() < 19 + ext {
            return Ok(false);
        }
        self.pos += 19 + ext;
        self.header_read = true;
        Ok(true)
    }

    /// The end of the row at `pos`, if all of it has arrived.
    fn complete_row(&self) -> Result<Option<usize>, String> {
        let buf = &self.pending[self.pos..];
        if buf.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([buf[0], buf[1]]);
        if count == -1 {
            return Ok(Some(self.pos + 2));
        }
        if count as usize != self.columns.len() {
            return Err(format!(
                "a COPY row has {count} fields, the query {}",
                self.columns.len()
            ));
        }
        let mut at = 2;
        for _ in 0..count {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
            at += 4;
            if len > 0 {
                at += len as usize;
            }
        }
        Ok((buf.len() >= at).then_some(self.pos + at))
    }
}

/// A column being built.
enum Values {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Oid(UInt32Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Numeric(Decimal128Builder, i8),
    Text(StringBuilder),
    Jsonb(StringBuilder),
    Uuid(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Interval(IntervalMonthDayNanoBuilder),
    List {
        element: Field,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
        values: Box<Values>,
    },
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

impl Values {
    fn new(ty: &PgType) -> Values {
        match ty {
            PgType::Bool => Values::Bool(BooleanBuilder::new()),
            PgType::Int2 => Values::Int2(Int16Builder::new()),
            PgType::Int4 => Values::Int4(Int32Builder::new()),
            PgType::Int8 => Values::Int8(Int64Builder::new()),
            PgType::Oid => Values::Oid(UInt32Builder::new()),
            PgType::Float4 => Values::Float4(Float32Builder::new()),
            PgType::Float8 => Values::Float8(Float64Builder::new()),
            PgType::Numeric { precision, scale } => Values::Numeric(
                Decimal128Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .expect("precision 1..=38 checked by the mapping"),
                *scale,
            ),
            PgType::Text | PgType::Json => Values::Text(StringBuilder::new()),
            PgType::Jsonb => Values::Jsonb(StringBuilder::new()),
            PgType::Uuid => Values::Uuid(StringBuilder::new()),
            PgType::Bytea => Values::Bytea(BinaryBuilder::new()),
            PgType::Date => Values::Date(Date32Builder::new()),
            PgType::Time => Values::Time(Time64MicrosecondBuilder::new()),
            PgType::Timestamp => Values::Timestamp(TimestampMicrosecondBuilder::new(), false),
            PgType::Timestamptz => Values::Timestamp(TimestampMicrosecondBuilder::new(), true),
            PgType::Interval => Values::Interval(IntervalMonthDayNanoBuilder::new()),
            PgType::Array(element) => Values::List {
                element: Field::new("item", element.arrow_type(), true),
                offsets: vec![0],
                validity: NullBufferBuilder::new(0),
                values: Box::new(Values::new(element)),
            },
        }
    }

    fn push(&mut self, v: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = v else {
            self.push_null();
            return Ok(());
        };
        match self {
            Values::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Values::Int2(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Values::Int4(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Values::Int8(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Values::Oid(b) => b.append_value(u32::from_be_bytes(fixed(v)?)),
            Values::Float4(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Values::Float8(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Values::Numeric(b, scale) => b.append_value(numeric(v, *scale)?),
            Values::Text(b) => b.append_value(utf8(v)?),
            Values::Jsonb(b) => match v.split_first() {
                Some((1, text)) => b.append_value(utf8(text)?),
                _ => return Err("unknown jsonb format version".into()),
            },
            Values::Uuid(b) => b.append_value(uuid(&fixed::<16>(v)?)),
            Values::Bytea(b) => b.append_value(v),
            Values::Date(b) => {
                let days = i32::from_be_bytes(fixed(v)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err(
                        "infinite dates have no Arrow value; select the column as text".into(),
                    );
                }
                b.append_value(days.checked_add(EPOCH_DAYS).ok_or("date out of range")?)
            }
            Values::Time(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Values::Timestamp(b, _) => {
                let micros = i64::from_be_bytes(fixed(v)?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err(
                        "infinite timestamps have no Arrow value; select the column as text".into(),
                    );
                }
                b.append_value(
                    micros
                        .checked_add(EPOCH_MICROS)
                        .ok_or("timestamp out of range")?,
                )
            }
            Values::Interval(b) => {
                let v = fixed::<16>(v)?;
                let micros = i64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                let days = i32::from_be_bytes(v[8..12].try_into().expect("4 bytes"));
                let months = i32::from_be_bytes(v[12..].try_into().expect("4 bytes"));
                b.append_value(IntervalMonthDayNano::new(
                    months,
                    days,
                    micros.checked_mul(1000).ok_or("interval out of range")?,
                ))
            }
            Values::List {
                offsets,
                validity,
                values,
                ..
            } => {
                let added = array(v, values)?;
                let last = *offsets.last().expect("starts with 0");
                offsets.push(last + added);
                validity.append_non_null();
            }
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            Values::Bool(b) => b.append_null(),
            Values::Int2(b) => b.append_null(),
            Values::Int4(b) => b.append_null(),
            Values::Int8(b) => b.append_null(),
            Values::Oid(b) => b.append_null(),
            Values::Float4(b) => b.append_null(),
            Values::Float8(b) => b.append_null(),
            Values::Numeric(b, _) => b.append_null(),
            Values::Text(b) | Values::Jsonb(b) | Values::Uuid(b) => b.append_null(),
            Values::Bytea(b) => b.append_null(),
            Values::Date(b) => b.append_null(),
            Values::Time(b) => b.append_null(),
            Values::Timestamp(b, _) => b.append_null(),
            Values::Interval(b) => b.append_null(),
            Values::List {
                offsets, validity, ..
            } => {
                offsets.push(*offsets.last().expect("starts with 0"));
                validity.append_null();
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Int2(b) => Arc::new(b.finish()),
            Values::Int4(b) => Arc::new(b.finish()),
            Values::Int8(b) => Arc::new(b.finish()),
            Values::Oid(b) => Arc::new(b.finish()),
            Values::Float4(b) => Arc::new(b.finish()),
            Values::Float8(b) => Arc::new(b.finish()),
            Values::Numeric(b, _) => Arc::new(b.finish()),
            Values::Text(b) | Values::Jsonb(b) | Values::Uuid(b) => Arc::new(b.finish()),
            Values::Bytea(b) => Arc::new(b.finish()),
            Values::Date(b) => Arc::new(b.finish()),
            Values::Time(b) => Arc::new(b.finish()),
            Values::Timestamp(b, utc) => {
                let a = b.finish();
                Arc::new(if *utc { a.with_timezone("UTC") } else { a })
            }
            Values::Interval(b) => Arc::new(b.finish()),
            Values::List {
                element,
                offsets,
                validity,
                values,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(
                    Arc::new(element.clone()),
                    offsets,
                    values.finish(),
                    validity.finish(),
                ))
            }
        }
    }
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("not UTF-8 text: {e}"))
}

fn uuid(b: &[u8; 16]) -> String {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(&b[..4]),
        hex(&b[4..6]),
        hex(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..])
    )
}

/// A binary `numeric` as an integer scaled by `10^scale`.
fn numeric(v: &[u8], scale: i8) -> Result<i128, String> {
    if v.len() < 8 {
        return Err("short numeric value".into());
    }
    let word = |i: usize| u16::from_be_bytes([v[i], v[i + 1]]);
    let ndigits = word(0) as usize;
    let weight = word(2) as i16 as i32;
    let sign = word(4);
    if v.len() != 8 + 2 * ndigits {
        return Err("malformed numeric value".into());
    }
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN has no decimal value; select the column as text".into()),
        _ => return Err("infinity has no decimal value; select the column as text".into()),
    }
    let overflow = || "numeric value does not fit its declared precision".to_string();
    let mut total: i128 = 0;
    for i in 0..ndigits {
        let digit = i128::from(word(8 + 2 * i));
        // This base-10000 digit is worth digit × 10^exp in scaled units.
        let exp = 4 * (weight - i as i32) + i32::from(scale);
        let part = if exp >= 0 {
            10i128
                .checked_pow(exp as u32)
                .and_then(|p| digit.checked_mul(p))
                .ok_or_else(overflow)?
        } else {
            let p = 10i128.pow((-exp).min(38) as u32);
            if digit % p != 0 {
                return Err("numeric value has more decimals than its scale".into());
            }
            digit / p
        };
        total = total.checked_add(part).ok_or_else(overflow)?;
    }
    Ok(if sign == 0x4000 { -total } else { total })
}

/// A one-dimensional binary array's elements, appended to `values`;
/// returns how many.
fn array(v: &[u8], values: &mut Values) -> Result<i32, String> {
    let int = |at: usize| -> Result<i32, String> {
        v.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| "truncated array".to_string())
    };
    let ndim = int(0)?;
    if ndim == 0 {
        return Ok(0);
    }
    if ndim != 1 {
        return Err(format!(
            "{ndim}-dimensional arrays have no Arrow mapping; select the column as text"
        ));
    }
    let len = int(12)?;
    let mut at = 20;
    for _ in 0..len {
        let n = int(at)?;
        at += 4;
        if n < 0 {
            values.push_null();
        } else {
            let item = v.get(at..at + n as usize).ok_or("truncated array")?;
            values.push(Some(item))?;
            at += n as usize;
        }
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_scale_exactly() {
        // 12345.67 = [1, 2345, 6700], weight 1
        let v = numeric_bytes(1, 0, 2, &[1, 2345, 6700]);
        assert_eq!(numeric(&v, 2).unwrap(), 1_234_567);
        assert_eq!(numeric(&v, 4).unwrap(), 123_456_700);
        let neg = numeric_bytes(-1, 0x4000, 4, &[5]); // -0.0005
        assert_eq!(numeric(&neg, 4).unwrap(), -5);
        assert!(numeric(&neg, 2).unwrap_err().contains("more decimals"));
        assert!(numeric(&numeric_bytes(0, 0xC000, 0, &[]), 2).is_err());
    }

    #[test]
    fn rows_split_across_chunks_decode_once_complete() {
        let specs = vec![
            ColumnSpec {
                name: "id".into(),
                ty: PgType::Int8,
            },
            ColumnSpec {
                name: "name".into(),
                ty: PgType::Text,
            },
        ];
        let mut stream = Vec::new();
        stream.extend(SIGNATURE);
        stream.extend(0i32.to_be_bytes());
        stream.extend(0i32.to_be_bytes());
        for (id, name) in [(1i64, Some("a")), (2, None)] {
            stream.extend(2i16.to_be_bytes());
            stream.extend(8i32.to_be_bytes());
            stream.extend(id.to_be_bytes());
            match name {
                Some(n) => {
                    stream.extend((n.len() as i32).to_be_bytes());
                    stream.extend(n.as_bytes());
                }
                None => stream.extend((-1i32).to_be_bytes()),
            }
        }
        stream.extend((-1i16).to_be_bytes());
        let mut d = CopyDecoder::new(specs);
        for chunk in stream.chunks(5) {
            d.feed(chunk);
            d.decode(1000).unwrap();
        }
        assert!(d.finished());
        let batch = d.take_batch().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(1).null_count(), 1);
    }

    #[test]
    fn uuids_print_canonically() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(uuid(&b), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
