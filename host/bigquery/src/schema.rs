//! Arrow types as BigQuery column types, and whether an existing column
//! can take a batch's.
//!
//! New columns are always `NULLABLE` (or `REPEATED` for lists): a
//! `REQUIRED` column could never be relaxed by a later run's nullable data,
//! and BigQuery adds only nullable columns to an existing table.

use arrow_schema::{DataType, Field, Fields};
use serde_json::{Value, json};
use sluice_codec::Error;

/// The BigQuery type of an Arrow type, as BigQuery's REST API names it
/// (`INTEGER`, `FLOAT`, `RECORD`…), and whether it is repeated.
fn column_type(field: &Field) -> Result<(String, bool, Option<Vec<Value>>), String> {
    let json = is_json(field);
    let (dt, repeated) = match field.data_type() {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            if matches!(
                item.data_type(),
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
            ) {
                return Err("a list of lists (BigQuery has no arrays of arrays)".into());
            }
            (item.data_type(), true)
        }
        dt => (dt, false),
    };
    let plain = |t: &str| Ok((t.to_string(), repeated, None));
    match value_type(dt) {
        DataType::Boolean => plain("BOOLEAN"),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => plain("INTEGER"),
        DataType::UInt64 => plain("NUMERIC"),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => plain("FLOAT"),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            let (p, s) = (i32::from(*p), i32::from(*s));
            if s < 0 {
                Err(format!("decimal({p},{s}) (a negative scale)"))
            } else if s <= 9 && p - s <= 29 {
                plain("NUMERIC")
            } else if s <= 38 && p - s <= 38 {
                plain("BIGNUMERIC")
            } else {
                Err(format!("decimal({p},{s}) (wider than BIGNUMERIC)"))
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if json => plain("JSON"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => plain("STRING"),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => plain("BYTES"),
        DataType::Date32 | DataType::Date64 => plain("DATE"),
        DataType::Time32(_) | DataType::Time64(_) => plain("TIME"),
        // Wall-clock time without a zone is a DATETIME; an instant is a
        // TIMESTAMP.
        DataType::Timestamp(_, None) => plain("DATETIME"),
        DataType::Timestamp(_, Some(_)) => plain("TIMESTAMP"),
        DataType::Struct(fields) => {
            let nested = fields_json(fields, &[])?;
            Ok(("RECORD".into(), repeated, Some(nested)))
        }
        other => Err(format!("{other}")),
    }
}

/// A dictionary's values type, else the type itself.
fn value_type(dt: &DataType) -> &DataType {
    match dt {
        DataType::Dictionary(_, values) => values,
        dt => dt,
    }
}

/// Whether a text column holds JSON (Arrow's canonical `arrow.json`
/// extension).
fn is_json(field: &Field) -> bool {
    field
        .metadata()
        .get("ARROW:extension:name")
        .is_some_and(|n| n == "arrow.json")
}

fn fields_json(fields: &Fields, descriptions: &[(String, String)]) -> Result<Vec<Value>, String> {
    fields
        .iter()
        .map(|f| {
            let (ty, repeated, nested) = column_type(f)
                .map_err(|why| format!("column `{}`: no BigQuery type for {why}", f.name()))?;
            let mut out = json!({
                "name": f.name(),
                "type": ty,
                "mode": if repeated { "REPEATED" } else { "NULLABLE" },
            });
            if let Some(nested) = nested {
                out["fields"] = Value::Array(nested);
            }
            if let Some((_, d)) = descriptions.iter().find(|(n, _)| n == f.name()) {
                out["description"] = Value::String(d.clone());
            }
            Ok(out)
        })
        .collect()
}

/// BigQuery's `schema.fields` for batches with these fields, with column
/// descriptions by name.
///
/// # Errors
/// A config error naming the first column BigQuery has no type for.
pub fn bigquery_fields(
    fields: &Fields,
    descriptions: &[(String, String)],
) -> Result<Vec<Value>, Error> {
    fields_json(fields, descriptions).map_err(Error::config)
}

/// How BigQuery's SQL spells a REST type name (`INTEGER` is `INT64`).
fn standard(ty: &str) -> &str {
    match ty {
        "INTEGER" => "INT64",
        "FLOAT" => "FLOAT64",
        "BOOLEAN" => "BOOL",
        "RECORD" => "STRUCT",
        other => other,
    }
}

/// A column's type as a user reads it in BigQuery (`ARRAY<STRING>`).
pub fn type_name(column: &Value) -> String {
    let ty = standard(column["type"].as_str().unwrap_or("?")).to_string();
    let ty = if ty == "STRUCT" {
        let inner: Vec<String> = column["fields"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| format!("{} {}", f["name"].as_str().unwrap_or("?"), type_name(f)))
                    .collect()
            })
            .unwrap_or_default();
        format!("STRUCT<{}>", inner.join(", "))
    } else {
        ty
    };
    if column["mode"].as_str() == Some("REPEATED") {
        format!("ARRAY<{ty}>")
    } else {
        ty
    }
}

/// Whether an existing column can take the values of `field`: `Ok`, or
/// the type the data would need.
///
/// # Errors
/// The data's type, as BigQuery names it, when the column cannot take it.
pub fn compatible(field: &Field, column: &Value) -> Result<(), String> {
    let (ty, repeated, nested) = column_type(field)?;
    let wanted = json!({
        "type": ty,
        "mode": if repeated { "REPEATED" } else { "NULLABLE" },
        "fields": nested,
    });
    let data = type_name(&wanted);
    if repeated != (column["mode"].as_str() == Some("REPEATED")) {
        return Err(data);
    }
    let have = standard(column["type"].as_str().unwrap_or(""));
    let ok = match (standard(&ty), have) {
        (a, b) if a == b && a != "STRUCT" => true,
        ("INT64", "FLOAT64" | "NUMERIC" | "BIGNUMERIC") => true,
        ("NUMERIC", "BIGNUMERIC") => true,
        ("STRING", "JSON") | ("JSON", "STRING") => true,
        ("DATETIME", "TIMESTAMP") => true,
        ("STRUCT", "STRUCT") => {
            let inner = match value_type(field.data_type()) {
                DataType::Struct(fs) => Some(fs.clone()),
                DataType::List(i) | DataType::LargeList(i) => match i.data_type() {
                    DataType::Struct(fs) => Some(fs.clone()),
                    _ => None,
                },
                _ => None,
            };
            let columns = column["fields"].as_array().cloned().unwrap_or_default();
            inner.is_some_and(|fs| {
                fs.iter().all(|f| {
                    columns
                        .iter()
                        .find(|c| c["name"].as_str() == Some(f.name()))
                        .is_some_and(|c| compatible(f, c).is_ok())
                })
            })
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(data) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;
    use std::sync::Arc;

    fn one(field: Field) -> Value {
        bigquery_fields(&Fields::from(vec![field]), &[]).unwrap()[0].clone()
    }

    #[test]
    fn arrow_types_map_to_bigquery_types() {
        let cases = [
            (DataType::Int32, "INTEGER"),
            (DataType::Float64, "FLOAT"),
            (DataType::Boolean, "BOOLEAN"),
            (DataType::Utf8, "STRING"),
            (DataType::Binary, "BYTES"),
            (DataType::Date32, "DATE"),
            (DataType::Decimal128(12, 2), "NUMERIC"),
            (DataType::Decimal128(38, 20), "BIGNUMERIC"),
            (DataType::Timestamp(TimeUnit::Microsecond, None), "DATETIME"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "TIMESTAMP",
            ),
        ];
        for (dt, want) in cases {
            assert_eq!(one(Field::new("c", dt.clone(), true))["type"], want, "{dt}");
        }
        let list = one(Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ));
        assert_eq!(list["mode"], "REPEATED");
        assert_eq!(type_name(&list), "ARRAY<STRING>");
        let json =
            Field::new("doc", DataType::Utf8, true).with_metadata(std::collections::HashMap::from(
                [("ARROW:extension:name".to_string(), "arrow.json".to_string())],
            ));
        assert_eq!(one(json)["type"], "JSON");
        let record = one(Field::new(
            "addr",
            DataType::Struct(Fields::from(vec![Field::new("zip", DataType::Utf8, true)])),
            true,
        ));
        assert_eq!(type_name(&record), "STRUCT<zip STRING>");
        let e = bigquery_fields(
            &Fields::from(vec![Field::new(
                "d",
                DataType::Duration(TimeUnit::Second),
                true,
            )]),
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("column `d`"), "{}", e.message);
    }

    #[test]
    fn compatible_columns() {
        let int = json!({"name": "n", "type": "INTEGER", "mode": "NULLABLE"});
        let float = json!({"name": "n", "type": "FLOAT64", "mode": "NULLABLE"});
        let text = json!({"name": "n", "type": "STRING", "mode": "NULLABLE"});
        assert!(compatible(&Field::new("n", DataType::Int64, true), &int).is_ok());
        assert!(compatible(&Field::new("n", DataType::Int16, true), &float).is_ok());
        assert_eq!(
            compatible(&Field::new("n", DataType::Utf8, true), &int),
            Err("STRING".into())
        );
        assert_eq!(
            compatible(&Field::new("n", DataType::Int64, true), &text),
            Err("INT64".into())
        );
    }
}
