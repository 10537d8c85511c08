//! Query results as Arrow: BigQuery's `schema.fields` as an Arrow schema,
//! and the rows of a result page (`{"f": [{"v": …}]}`) as a batch.
//!
//! Scalars arrive as text (numbers too, so INT64 and NUMERIC keep every
//! digit); each column is gathered as text and cast to its type, so a
//! value the type cannot hold fails the read naming the column instead of
//! turning into a NULL.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, Int64Array, ListArray, RecordBatch, RecordBatchOptions,
    StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use base64::Engine;
use serde_json::Value;
use sluice_codec::Error;

/// The Arrow type of a BigQuery column type (REST or SQL spelling).
fn arrow_type(field: &Value) -> Result<DataType, Error> {
    let ty = field["type"].as_str().unwrap_or("");
    Ok(match ty {
        "INTEGER" | "INT64" => DataType::Int64,
        "FLOAT" | "FLOAT64" => DataType::Float64,
        "NUMERIC" => DataType::Decimal128(38, 9),
        "BIGNUMERIC" => DataType::Decimal256(76, 38),
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "BYTES" => DataType::Binary,
        "DATE" => DataType::Date32,
        "TIME" => DataType::Time64(TimeUnit::Microsecond),
        "DATETIME" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        // JSON, GEOGRAPHY, INTERVAL and RANGE keep BigQuery's text.
        "STRING" | "JSON" | "GEOGRAPHY" | "INTERVAL" | "RANGE" => DataType::Utf8,
        "RECORD" | "STRUCT" => DataType::Struct(arrow_fields(nested(field))?),
        other => {
            return Err(Error::internal(format!(
                "column `{}`: BigQuery type `{other}` has no Arrow type here",
                name(field)
            )));
        }
    })
}

fn name(field: &Value) -> &str {
    field["name"].as_str().unwrap_or("?")
}

fn nested(field: &Value) -> &[Value] {
    field["fields"].as_array().map_or(&[], Vec::as_slice)
}

fn repeated(field: &Value) -> bool {
    field["mode"].as_str() == Some("REPEATED")
}

/// One column as an Arrow field: REPEATED is a list, REQUIRED not null,
/// JSON marked with Arrow's `arrow.json` extension so a sink writes it
/// back as JSON.
fn arrow_field(field: &Value) -> Result<Field, Error> {
    let item = Field::new(name(field), arrow_type(field)?, true);
    let item = if field["type"].as_str() == Some("JSON") {
        item.with_metadata([("ARROW:extension:name", "arrow.json")])
    } else {
        item
    };
    Ok(if repeated(field) {
        Field::new(
            name(field),
            DataType::List(Arc::new(item.with_name("item"))),
            false,
        )
    } else {
        item.with_nullable(field["mode"].as_str() != Some("REQUIRED"))
    })
}

fn arrow_fields(fields: &[Value]) -> Result<Fields, Error> {
    fields.iter().map(arrow_field).collect()
}

/// The Arrow schema of BigQuery's `schema.fields`.
///
/// # Errors
/// An internal error for a type this reader does not know.
pub fn arrow_schema(fields: &[Value]) -> Result<SchemaRef, Error> {
    Ok(Arc::new(Schema::new(arrow_fields(fields)?)))
}

/// The rows of one result page as a batch of `schema`.
///
/// # Errors
/// A data error naming the column whose value does not fit its type.
pub fn page_to_batch(
    schema: &SchemaRef,
    fields: &[Value],
    rows: &[Value],
) -> Result<RecordBatch, Error> {
    let cells: Vec<&Value> = rows.iter().collect();
    let columns = record_columns(fields, schema.fields(), &cells)?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| Error::internal(format!("BigQuery result page: {e}")))
}

/// The columns of records (`{"f": [...]}` each, or null) by position.
fn record_columns(
    fields: &[Value],
    arrow: &Fields,
    records: &[&Value],
) -> Result<Vec<ArrayRef>, Error> {
    fields
        .iter()
        .zip(arrow.iter())
        .enumerate()
        .map(|(i, (field, a))| {
            let cells: Vec<&Value> = records.iter().map(|r| &r["f"][i]["v"]).collect();
            column(field, a, &cells)
        })
        .collect()
}

/// One column from its cells' `v` values.
fn column(field: &Value, arrow: &Field, cells: &[&Value]) -> Result<ArrayRef, Error> {
    if let DataType::List(item) = arrow.data_type() {
        let mut offsets = Vec::with_capacity(cells.len() + 1);
        offsets.push(0i32);
        let mut values = Vec::new();
        for cell in cells {
            for v in cell.as_array().map_or(&[][..], Vec::as_slice) {
                values.push(&v["v"]);
            }
            offsets.push(
                i32::try_from(values.len()).map_err(|_| {
                    Error::data(format!("column `{}`: a page too large", name(field)))
                })?,
            );
        }
        let values = scalar_or_record(field, item, &values)?;
        let list = ListArray::try_new(
            item.clone(),
            OffsetBuffer::new(offsets.into()),
            values,
            None,
        )
        .map_err(|e| Error::internal(format!("column `{}`: {e}", name(field))))?;
        return Ok(Arc::new(list));
    }
    scalar_or_record(field, arrow, cells)
}

fn scalar_or_record(field: &Value, arrow: &Field, cells: &[&Value]) -> Result<ArrayRef, Error> {
    let DataType::Struct(children) = arrow.data_type() else {
        return scalar(field, arrow.data_type(), cells);
    };
    let nulls = NullBuffer::from(cells.iter().map(|c| !c.is_null()).collect::<Vec<_>>());
    let columns = record_columns(nested(field), children, cells)?;
    let nulls = (nulls.null_count() > 0).then_some(nulls);
    let array = StructArray::try_new(children.clone(), columns, nulls)
        .map_err(|e| Error::data(format!("column `{}`: {e}", name(field))))?;
    Ok(Arc::new(array))
}

/// Scalars: gathered as text, then cast (TIMESTAMPs arrive as
/// microseconds since the epoch, BYTES as base64).
fn scalar(field: &Value, ty: &DataType, cells: &[&Value]) -> Result<ArrayRef, Error> {
    let bad = |why: String| Error::data(format!("column `{}`: {why}", name(field)));
    let text: StringArray = cells
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Number(n) => Ok(Some(n.to_string())),
            other => Err(bad(format!("unexpected value {other}"))),
        })
        .collect::<Result<_, _>>()?;
    match ty {
        DataType::Utf8 => Ok(Arc::new(text)),
        DataType::Binary => {
            let engine = base64::engine::general_purpose::STANDARD;
            let bytes: BinaryArray = text
                .iter()
                .map(|v| v.map(|s| engine.decode(s)).transpose())
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("BYTES that are not base64: {e}")))?;
            Ok(Arc::new(bytes))
        }
        DataType::Timestamp(_, Some(_)) => {
            let micros = cast(&text, &DataType::Int64).map_err(bad)?;
            let micros = micros.as_any().downcast_ref::<Int64Array>().cloned();
            let micros = micros.ok_or_else(|| bad("not microseconds".into()))?;
            Ok(Arc::new(
                micros
                    .reinterpret_cast::<arrow_array::types::TimestampMicrosecondType>()
                    .with_timezone("UTC"),
            ))
        }
        ty => cast(&text, ty).map_err(bad),
    }
}

fn cast(text: &StringArray, ty: &DataType) -> Result<ArrayRef, String> {
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(text, ty, &options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType};
    use serde_json::json;

    fn fields() -> Vec<Value> {
        serde_json::from_value(json!([
            {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
            {"name": "amount", "type": "NUMERIC"},
            {"name": "at", "type": "TIMESTAMP"},
            {"name": "day", "type": "DATE"},
            {"name": "blob", "type": "BYTES"},
            {"name": "doc", "type": "JSON"},
            {"name": "tags", "type": "STRING", "mode": "REPEATED"},
            {"name": "who", "type": "RECORD", "fields": [
                {"name": "name", "type": "STRING"},
                {"name": "age", "type": "INT64"}
            ]}
        ]))
        .unwrap()
    }

    #[test]
    fn a_page_becomes_a_typed_batch() {
        let fields = fields();
        let schema = arrow_schema(&fields).unwrap();
        assert!(!schema.field(0).is_nullable());
        assert_eq!(
            schema.field(5).metadata()["ARROW:extension:name"],
            "arrow.json"
        );
        let rows = vec![
            json!({"f": [{"v": "9007199254740993"}, {"v": "12.5"}, {"v": "1700000000123456"},
                {"v": "2024-02-29"}, {"v": "AAH/"}, {"v": "{\"a\":1}"},
                {"v": [{"v": "x"}, {"v": "y"}]}, {"v": {"f": [{"v": "ann"}, {"v": "41"}]}}]}),
            json!({"f": [{"v": "2"}, {"v": null}, {"v": null}, {"v": null}, {"v": null},
                {"v": null}, {"v": []}, {"v": null}]}),
        ];
        let batch = page_to_batch(&schema, &fields, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch.column(0).as_primitive::<Int64Type>().value(0),
            9_007_199_254_740_993
        );
        assert_eq!(
            batch.column(1).as_primitive::<Decimal128Type>().value(0),
            12_500_000_000
        );
        assert!(batch.column(1).is_null(1));
        assert_eq!(
            batch
                .column(2)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_700_000_000_123_456
        );
        assert_eq!(
            batch.column(3).as_primitive::<Date32Type>().value(0),
            19_782
        );
        assert_eq!(batch.column(4).as_binary::<i32>().value(0), &[0, 1, 255]);
        let tags = batch.column(6).as_list::<i32>();
        assert_eq!(tags.value_length(0), 2);
        assert_eq!(tags.value_length(1), 0);
        let who = batch.column(7).as_struct();
        assert!(who.is_null(1));
        assert_eq!(who.column(0).as_string::<i32>().value(0), "ann");
    }

    #[test]
    fn a_value_its_type_cannot_hold_names_the_column() {
        let fields: Vec<Value> =
            serde_json::from_value(json!([{"name": "n", "type": "INT64"}])).unwrap();
        let schema = arrow_schema(&fields).unwrap();
        let e = page_to_batch(&schema, &fields, &[json!({"f": [{"v": "x"}]})]).unwrap_err();
        assert!(e.message.contains("column `n`"), "{}", e.message);
    }

    #[test]
    fn an_empty_page_has_the_schema() {
        let fields = fields();
        let schema = arrow_schema(&fields).unwrap();
        let batch = page_to_batch(&schema, &fields, &[]).unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.num_columns(), 8);
    }
}
