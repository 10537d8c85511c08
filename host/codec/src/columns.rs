//! Batches to and from columns of plain values ([`sluice_types::plain_columns`]):
//! the host side of `batch.from-columns` and `batch.to-columns`.
//!
//! A plugin without Arrow hands each column over in the form its bindings
//! lower fastest (integers, floats, booleans, strings); the host builds the
//! Arrow array of that form, checking every length and null index, then
//! casts it to the field's type with Arrow's own kernels, so `"2026-12-07"`
//! becomes a date here, natively, and a value that does not convert names
//! its column and row. Nothing a plugin sends can make this code panic.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, GenericByteArray, Int64Array, NullArray,
    RecordBatch, RecordBatchOptions,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{
    BinaryType, ByteArrayType, DataType, Field, LargeBinaryType, LargeUtf8Type, Schema, SchemaRef,
    Utf8Type,
};
use sluice_types::plain_columns::{Column, ColumnValues};
use sluice_types::type_name;

use crate::Error;
use crate::json_lines::{batch_to_json_lines, json_lines_to_batch};
use crate::packed_columns::{join, joined_values, pack, unpack_numbers};

/// A batch of `schema` from `columns`, one a field, in schema order.
///
/// # Errors
/// A data error naming the column (and the row, for a value that does not
/// convert): a wrong count of columns, lengths that differ, a null index
/// out of range, a form that cannot become the field's type.
pub fn columns_to_batch(schema: SchemaRef, columns: Vec<Column>) -> Result<RecordBatch, Error> {
    if columns.len() != schema.fields().len() {
        return Err(Error::data(format!(
            "columns: {} given for a schema of {}",
            columns.len(),
            schema.fields().len()
        )));
    }
    let mut arrays = Vec::with_capacity(columns.len());
    let mut rows = None;
    for (field, column) in schema.fields().iter().zip(columns) {
        let array = array_of(field, column)
            .map_err(|e| Error::data(format!("columns: column `{}`: {e}", field.name())))?;
        match rows {
            None => rows = Some(array.len()),
            Some(n) if n != array.len() => {
                return Err(Error::data(format!(
                    "columns: column `{}` has {} values, the columns before it {n}",
                    field.name(),
                    array.len()
                )));
            }
            Some(_) => {}
        }
        arrays.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.unwrap_or(0)));
    RecordBatch::try_new_with_options(schema, arrays, &options)
        .map_err(|e| Error::data(format!("columns: {e}")))
}

/// The columns of `batch`: integers as `Int64` (a `uint64` beyond its range
/// as `Text`), floats as `Float64`, booleans, strings as `Text`, binary as
/// `Binary`, lists, structs and maps as `Json`, and every other type (dates,
/// timestamps, decimals, times) as `Text` in the form `to-json-lines` writes.
/// With `packed`, numbers and booleans in their `-base64` forms and text
/// joined (see [`ColumnValues`]).
///
/// # Errors
/// A data error for a type that has no plain form.
pub fn batch_to_columns(batch: &RecordBatch, packed: bool) -> Result<Vec<Column>, Error> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            let mut column = column_of(array, packed)
                .map_err(|e| Error::data(format!("columns: column `{}`: {e}", field.name())))?;
            if packed {
                column.values = pack(column.values);
            }
            Ok(column)
        })
        .collect()
}

/// One field's array from the values a plugin sent.
fn array_of(field: &Field, column: Column) -> Result<ArrayRef, String> {
    let form = column.values.form();
    let target = field.data_type();
    if !can_become(&column.values, target) {
        return Err(format!(
            "a {} column cannot be given as {form}",
            type_name(target)
        ));
    }
    let nulls = &column.nulls;
    match unpack_numbers(column.values)? {
        ColumnValues::Int64(v) => built(target, v.len(), nulls, |n| {
            Ok(Arc::new(Int64Array::new(v.into(), n)))
        }),
        ColumnValues::Float64(v) => built(target, v.len(), nulls, |n| {
            Ok(Arc::new(Float64Array::new(v.into(), n)))
        }),
        ColumnValues::Boolean(v) => built(target, v.len(), nulls, |n| {
            Ok(Arc::new(BooleanArray::new(BooleanBuffer::from(v), n)))
        }),
        ColumnValues::Text(v) => built(target, v.len(), nulls, |n| strings(&v, n)),
        ColumnValues::TextJoined { separator, text } => {
            let v = joined_values(separator, &text)?;
            built(target, v.len(), nulls, |n| strings(&v, n))
        }
        ColumnValues::Binary(v) => built(target, v.len(), nulls, |n| binaries(&v, n)),
        ColumnValues::Json(v) => built(target, v.len(), nulls, |n| {
            json_values(field, &v, n.as_ref())
        }),
        packed => Err(format!("{} was not unpacked", packed.form())),
    }
}

/// The array `make` builds from `len` values with nulls at the `nulls`
/// rows, as a `target` column.
fn built(
    target: &DataType,
    len: usize,
    nulls: &[u32],
    make: impl FnOnce(Option<NullBuffer>) -> Result<ArrayRef, String>,
) -> Result<ArrayRef, String> {
    let nulls = null_buffer(nulls, len)?;
    if *target == DataType::Null {
        return match nulls {
            Some(n) if n.null_count() == len => Ok(Arc::new(NullArray::new(len))),
            _ if len == 0 => Ok(Arc::new(NullArray::new(0))),
            _ => Err("a null column holds a value that is not null".into()),
        };
    }
    let array = make(nulls)?;
    if array.data_type() == target {
        return Ok(array);
    }
    convert(&array, target)
}

/// The validity of `len` values, nulls at the `nulls` rows.
fn null_buffer(nulls: &[u32], len: usize) -> Result<Option<NullBuffer>, String> {
    if nulls.is_empty() {
        return Ok(None);
    }
    let mut valid = vec![true; len];
    for &row in nulls {
        match valid.get_mut(row as usize) {
            Some(v) => *v = false,
            None => return Err(format!("null row {row} is past the {len} values")),
        }
    }
    Ok(Some(NullBuffer::from(valid)))
}

/// Whether values in `form` may become a `target` column.
fn can_become(form: &ColumnValues, target: &DataType) -> bool {
    use DataType as T;
    let nested = is_nested(target);
    let target_values = match target {
        T::Dictionary(_, values) => values.as_ref(),
        other => other,
    };
    let binary = matches!(
        target_values,
        T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_)
    );
    match form {
        _ if *target == T::Null => true,
        ColumnValues::Json(_) => true,
        _ if nested => false,
        ColumnValues::Int64(_) | ColumnValues::Int64Base64(_) => {
            target_values.is_numeric() || target_values.is_temporal()
        }
        ColumnValues::Float64(_) | ColumnValues::Float64Base64(_) => {
            target_values.is_floating()
                || matches!(
                    target_values,
                    T::Decimal32(..) | T::Decimal64(..) | T::Decimal128(..) | T::Decimal256(..)
                )
        }
        ColumnValues::Boolean(_) | ColumnValues::BooleanBase64(_) => {
            matches!(target_values, T::Boolean)
        }
        ColumnValues::Text(_) | ColumnValues::TextJoined { .. } => {
            !binary && can_cast_types(&T::Utf8, target)
        }
        ColumnValues::Binary(_) => binary,
    }
}

/// Lists, structs, maps and unions: the types that cross as JSON values.
fn is_nested(data_type: &DataType) -> bool {
    use DataType as T;
    matches!(
        data_type,
        T::List(_)
            | T::LargeList(_)
            | T::FixedSizeList(..)
            | T::ListView(_)
            | T::LargeListView(_)
            | T::Struct(_)
            | T::Map(..)
            | T::Union(..)
    )
}

/// A string array of `values` (large when they exceed 2 GiB).
fn strings<S: AsRef<str>>(values: &[S], nulls: Option<NullBuffer>) -> Result<ArrayRef, String> {
    if values.iter().map(|s| s.as_ref().len()).sum::<usize>() > i32::MAX as usize {
        return byte_array::<LargeUtf8Type, _>(values, nulls);
    }
    byte_array::<Utf8Type, _>(values, nulls)
}

/// A binary array of `values` (large when they exceed 2 GiB).
fn binaries(values: &[Vec<u8>], nulls: Option<NullBuffer>) -> Result<ArrayRef, String> {
    if values.iter().map(Vec::len).sum::<usize>() > i32::MAX as usize {
        return byte_array::<LargeBinaryType, _>(values, nulls);
    }
    byte_array::<BinaryType, _>(values, nulls)
}

fn byte_array<T: ByteArrayType, V: AsRef<T::Native>>(
    values: &[V],
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, String> {
    let (offsets, data, _) = GenericByteArray::<T>::from_iter_values(values).into_parts();
    Ok(Arc::new(
        GenericByteArray::<T>::try_new(offsets, data, nulls).map_err(|e| e.to_string())?,
    ))
}

/// Values given as JSON, one a row, decoded straight into the field's type
/// by the JSON Lines decoder.
fn json_values(
    field: &Field,
    values: &[String],
    nulls: Option<&NullBuffer>,
) -> Result<ArrayRef, String> {
    let bytes: usize = values.iter().map(String::len).sum();
    let mut text = String::with_capacity(bytes + values.len() * 8);
    for (i, value) in values.iter().enumerate() {
        text.push_str("{\"v\":");
        if nulls.is_some_and(|n| n.is_null(i)) || value.trim().is_empty() {
            text.push_str("null");
        } else {
            text.push_str(value);
        }
        text.push_str("}\n");
    }
    let one = Arc::new(Schema::new(vec![Field::new(
        "v",
        field.data_type().clone(),
        true,
    )]));
    let batch = json_lines_to_batch(one, &text).map_err(|e| e.message)?;
    if batch.num_rows() != values.len() {
        return Err(format!(
            "{} JSON values read as {} rows: a value is not one JSON value",
            values.len(),
            batch.num_rows()
        ));
    }
    Ok(batch.column(0).clone())
}

/// `array` cast to `target`; a value that does not convert names its row.
fn convert(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, target, &strict).map_err(|e| {
        // Cast again, leniently: the first value that became null is the
        // one that did not convert.
        let lenient = cast_with_options(array, target, &CastOptions::default()).ok();
        let row =
            lenient.and_then(|out| (0..array.len()).find(|&i| out.is_null(i) && !array.is_null(i)));
        match row {
            Some(row) => format!("row {row}: {e}"),
            None => e.to_string(),
        }
    })
}

/// One array as the plugin reads it (strings joined with `packed`).
fn column_of(array: &ArrayRef, packed: bool) -> Result<Column, String> {
    use DataType as T;
    let nulls = null_rows(array)?;
    let values = match array.data_type() {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 => {
            int64_values(&cast_to(array, &T::Int64)?)
        }
        T::UInt64 => match cast_with_options(
            array,
            &T::Int64,
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        ) {
            Ok(ints) => int64_values(&ints),
            Err(_) => texts(&cast_to(array, &T::Utf8)?, packed),
        },
        T::Float16 | T::Float32 | T::Float64 => {
            let floats = cast_to(array, &T::Float64)?;
            ColumnValues::Float64(
                floats
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .values()
                    .to_vec(),
            )
        }
        T::Boolean => ColumnValues::Boolean(array.as_boolean().values().iter().collect()),
        T::Utf8 | T::LargeUtf8 | T::Utf8View => texts(&cast_to(array, &T::Utf8)?, packed),
        T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_) => {
            let binaries = cast_to(array, &T::LargeBinary)?;
            let binaries = binaries.as_binary::<i64>();
            ColumnValues::Binary(
                (0..binaries.len())
                    .map(|i| binaries.value(i).to_vec())
                    .collect(),
            )
        }
        T::Dictionary(_, values) => return decoded(array, values, nulls, packed),
        T::RunEndEncoded(_, values) => {
            return decoded(array, values.data_type(), nulls, packed);
        }
        T::Null => ColumnValues::Text(vec![String::new(); array.len()]),
        nested if is_nested(nested) => ColumnValues::Json(json_of(array)?),
        _ => match cast_to(array, &T::Utf8) {
            Ok(text) => texts(&text, packed),
            Err(_) => ColumnValues::Json(json_of(array)?),
        },
    };
    Ok(Column { values, nulls })
}

/// The rows of `array` that are null.
fn null_rows(array: &ArrayRef) -> Result<Vec<u32>, String> {
    let Some(nulls) = array.logical_nulls().filter(|n| n.null_count() > 0) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::with_capacity(nulls.null_count());
    for (i, valid) in nulls.iter().enumerate() {
        if !valid {
            rows.push(u32::try_from(i).map_err(|_| "over 2^32 rows".to_string())?);
        }
    }
    Ok(rows)
}

/// A dictionary or run-end encoded array as its values' plain type.
fn decoded(
    array: &ArrayRef,
    values: &DataType,
    nulls: Vec<u32>,
    packed: bool,
) -> Result<Column, String> {
    let mut column = column_of(&cast_to(array, values)?, packed)?;
    column.nulls = nulls;
    Ok(column)
}

fn cast_to(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    arrow::compute::cast(array, to).map_err(|e| e.to_string())
}

fn int64_values(array: &ArrayRef) -> ColumnValues {
    ColumnValues::Int64(
        array
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec(),
    )
}

/// A `Utf8` array's values: joined with `packed` (when a separator is
/// free), else one string each.
fn texts(array: &ArrayRef, packed: bool) -> ColumnValues {
    let strings = array.as_string::<i32>();
    if packed && let Some(joined) = join(strings) {
        return joined;
    }
    ColumnValues::Text(
        (0..strings.len())
            .map(|i| strings.value(i).to_string())
            .collect(),
    )
}

/// Each value as JSON, written by the JSON Lines writer (so decimals stay
/// strings) one row at a time: `{"v":…}` lines, unwrapped.
fn json_of(array: &ArrayRef) -> Result<Vec<String>, String> {
    let one = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "v",
            array.data_type().clone(),
            true,
        )])),
        vec![array.clone()],
    )
    .map_err(|e| e.to_string())?;
    let text = batch_to_json_lines(&one).map_err(|e| e.message)?;
    let values = text
        .lines()
        .map(|line| {
            line.strip_prefix("{\"v\":")
                .and_then(|rest| rest.strip_suffix('}'))
                .map(str::to_string)
                .ok_or_else(|| format!("the JSON writer wrote `{line}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() != array.len() {
        return Err(format!(
            "the JSON writer wrote {} rows for {}",
            values.len(),
            array.len()
        ));
    }
    Ok(values)
}
