//! `columns_to_batch` / `batch_to_columns`: the values a plugin without
//! Arrow sends are checked and cast, and nothing it sends makes the host
//! panic.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Field, Int16Type, Schema, SchemaRef};
use sluice_codec::{batch_to_columns, columns_to_batch};
use sluice_types::plain_columns::{Column, ColumnValues};

fn ints(values: &[i64]) -> Column {
    Column {
        values: ColumnValues::Int64(values.to_vec()),
        nulls: vec![],
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

fn texts(values: &[&str]) -> Column {
    Column {
        values: ColumnValues::Text(strings(values)),
        nulls: vec![],
    }
}

fn schema(fields: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
            .collect::<Vec<_>>(),
    ))
}

fn data_error(schema: SchemaRef, columns: Vec<Column>) -> String {
    let e = columns_to_batch(schema, columns).expect_err("should be refused");
    assert_eq!(e.kind, sluice_codec::ErrorKind::Data, "{}", e.message);
    e.message
}

#[test]
fn text_and_integers_are_cast_to_the_fields_types() {
    let schema = schema(&[
        ("small", DataType::Int16, false),
        ("day", DataType::Date32, true),
        ("amount", DataType::Decimal128(12, 2), true),
    ]);
    let mut day = texts(&["2026-12-07", "", "1970-01-02"]);
    day.nulls = vec![1];
    let batch = columns_to_batch(
        schema.clone(),
        vec![ints(&[1, -2, 300]), day, texts(&["12.30", "-0.5", "7"])],
    )
    .unwrap();
    assert_eq!(batch.schema(), schema);
    assert_eq!(
        batch.column(0).as_primitive::<Int16Type>().values(),
        &[1, -2, 300]
    );
    let days = batch.column(1).as_primitive::<Date32Type>();
    assert!(days.is_null(1));
    assert_eq!((days.value(0), days.value(2)), (20_794, 1));
    let back = batch_to_columns(&batch, false).unwrap();
    assert_eq!(back[0], ints(&[1, -2, 300]));
    assert_eq!(back[1].nulls, vec![1]);
    assert_eq!(back[2], texts(&["12.30", "-0.50", "7.00"]));
}

#[test]
fn a_value_that_does_not_convert_names_its_column_and_row() {
    let schema = schema(&[("day", DataType::Date32, true)]);
    let message = data_error(schema, vec![texts(&["2026-12-07", "2026-12-08", "soon"])]);
    assert!(message.contains("column `day`"), "{message}");
    assert!(message.contains("row 2"), "{message}");
    assert!(message.contains("soon"), "{message}");

    let schema = self::schema(&[("small", DataType::Int8, true)]);
    let message = data_error(schema, vec![ints(&[1, 1000])]);
    assert!(
        message.contains("column `small`") && message.contains("row 1"),
        "{message}"
    );
}

#[test]
fn wrong_shapes_are_refused_by_name_never_a_panic() {
    let one = schema(&[("a", DataType::Utf8, true)]);
    let cases: Vec<(Vec<Column>, &str)> = vec![
        (vec![], "0 given for a schema of 1"),
        (vec![ints(&[1])], "a string column cannot be given as int64"),
        (
            vec![Column {
                values: ColumnValues::Binary(vec![vec![0xff]]),
                nulls: vec![],
            }],
            "cannot be given as binary",
        ),
        (
            vec![Column {
                values: ColumnValues::Text(strings(&["a", "b"])),
                nulls: vec![2],
            }],
            "null row 2 is past the 2 values",
        ),
    ];
    for (columns, expected) in cases {
        let message = data_error(one.clone(), columns);
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }

    let fixed = schema(&[("n", DataType::Int64, false)]);
    let message = data_error(
        fixed.clone(),
        vec![Column {
            values: ColumnValues::Float64(vec![1.5]),
            nulls: vec![],
        }],
    );
    assert!(message.contains("cannot be given as float64"), "{message}");

    let two = schema(&[("a", DataType::Int64, true), ("b", DataType::Int64, true)]);
    let message = data_error(two, vec![ints(&[1, 2]), ints(&[1])]);
    assert!(
        message.contains("column `b` has 1 values, the columns before it 2"),
        "{message}"
    );

    let mut nulls = ints(&[1, 2]);
    nulls.nulls = vec![1];
    let message = data_error(fixed, vec![nulls]);
    assert!(message.contains("null"), "{message}");
}

#[test]
fn json_values_decode_into_nested_types_and_one_value_stays_one_row() {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
    let schema = schema(&[("l", list, true)]);
    let json = |values: &[&str]| Column {
        values: ColumnValues::Json(strings(values)),
        nulls: vec![],
    };
    let batch = columns_to_batch(schema.clone(), vec![json(&["[1,2]", "null", "[]"])]).unwrap();
    assert_eq!(batch.num_rows(), 3);
    assert!(batch.column(0).is_null(1));
    let back = batch_to_columns(&batch, false).unwrap();
    assert_eq!(back[0].values, json(&["[1,2]", "null", "[]"]).values);
    assert_eq!(back[0].nulls, vec![1]);

    let message = data_error(schema, vec![json(&["[1]}\n{\"v\":[2]", "[3]"])]);
    assert!(message.contains("not one JSON value"), "{message}");
}

#[test]
fn random_values_never_panic() {
    // A seeded walk over forms, lengths, contents and null rows against
    // every kind of target: every call returns.
    let targets = [
        DataType::Int32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Boolean,
        DataType::Utf8,
        DataType::Binary,
        DataType::Date32,
        DataType::Decimal128(10, 3),
        DataType::Null,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    ];
    let words = [
        "",
        "1",
        "-7",
        "2026-12-07",
        "x",
        "[1]",
        "{\"a\":1}",
        "1e400",
        "null",
        "語",
    ];
    let mut seed = 0x5eed_u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n.max(1)
    };
    for _ in 0..5000 {
        let target = targets[next(targets.len() as u64) as usize].clone();
        let len = next(6) as usize;
        let text: Vec<String> = (0..len)
            .map(|_| words[next(words.len() as u64) as usize].to_string())
            .collect();
        let joined: String = text.iter().map(|t| format!("{t};")).collect();
        let values = match next(11) {
            0 => ColumnValues::Int64(
                (0..len)
                    .map(|_| next(u64::MAX) as i64 - (1 << 62))
                    .collect(),
            ),
            1 => ColumnValues::Float64((0..len).map(|_| next(1000) as f64 / 7.0).collect()),
            2 => ColumnValues::Boolean((0..len).map(|_| next(2) == 0).collect()),
            3 => ColumnValues::Text(text),
            4 => ColumnValues::Binary(text.into_iter().map(String::into_bytes).collect()),
            5 => ColumnValues::Json(text),
            // The packed forms, well and badly made.
            6 => ColumnValues::Int64Base64(base64_of(next(4) as usize * 4 + next(3) as usize)),
            7 => ColumnValues::Float64Base64(base64_of(len * 8)),
            8 => ColumnValues::BooleanBase64(base64_of(len)),
            9 => ColumnValues::TextJoined {
                separator: ';',
                text: joined,
            },
            _ => ColumnValues::TextJoined {
                separator: ['\0', ';', '語'][next(3) as usize],
                text: text.concat(),
            },
        };
        let nulls = (0..next(3)).map(|_| next(8) as u32).collect();
        let schema = schema(&[("x", target, next(2) == 0)]);
        if let Ok(batch) = columns_to_batch(schema, vec![Column { values, nulls }]) {
            let _ = batch_to_columns(&batch, next(2) == 0);
        }
    }
}

#[test]
fn batches_of_no_rows_cross_both_ways() {
    let schema = schema(&[("a", DataType::Int64, false), ("b", DataType::Utf8, true)]);
    let empty = RecordBatch::new_empty(schema.clone());
    let columns = batch_to_columns(&empty, false).unwrap();
    assert_eq!(columns_to_batch(schema.clone(), columns).unwrap(), empty);
    let packed = batch_to_columns(&empty, true).unwrap();
    assert_eq!(columns_to_batch(schema, packed).unwrap(), empty);
}

/// Base64 of `len` bytes of 0 and 1, as `boolean-base64` holds them
/// (and some `int64-base64` lengths that are not whole values).
fn base64_of(len: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode((0..len).map(|i| (i % 2) as u8).collect::<Vec<_>>())
}

/// Every column read back packed (`to-columns` with `packed`) builds the
/// same batch as read back plain, and packs into one string each.
#[test]
fn packed_columns_build_the_same_batch_as_plain_ones() {
    let schema = schema(&[
        ("id", DataType::Int64, false),
        ("ratio", DataType::Float64, true),
        ("active", DataType::Boolean, true),
        ("name", DataType::Utf8, true),
        ("day", DataType::Date32, true),
    ]);
    let ratio = Column {
        values: ColumnValues::Float64(vec![0.5, 0.0, -1.25]),
        nulls: vec![1],
    };
    let columns = vec![
        ints(&[1, i64::MIN, i64::MAX]),
        ratio,
        Column {
            values: ColumnValues::Boolean(vec![true, false, true]),
            nulls: vec![2],
        },
        Column {
            values: ColumnValues::Text(strings(&["a\u{1f}b", "", "語"])),
            nulls: vec![1],
        },
        texts(&["2026-12-07", "1970-01-01", "2000-02-29"]),
    ];
    let batch = columns_to_batch(schema.clone(), columns).unwrap();
    let packed = batch_to_columns(&batch, true).unwrap();
    for column in &packed {
        assert!(column.values.is_packed(), "{:?}", column.values);
    }
    assert_eq!(
        packed[3].values,
        ColumnValues::TextJoined {
            separator: '\u{1e}',
            text: "a\u{1f}b\u{1e}\u{1e}語\u{1e}".into()
        }
    );
    assert_eq!(columns_to_batch(schema, packed).unwrap(), batch);
}

#[test]
fn packed_columns_that_do_not_hold_whole_values_are_refused() {
    let schema = schema(&[
        ("id", DataType::Int64, false),
        ("name", DataType::Utf8, true),
    ]);
    let unterminated = Column {
        values: ColumnValues::TextJoined {
            separator: ';',
            text: "a;b".into(),
        },
        nulls: vec![],
    };
    let message = data_error(schema.clone(), vec![ints(&[1, 2]), unterminated]);
    assert!(message.contains("column `name`"), "{message}");
    assert!(
        message.contains("does not end with its separator"),
        "{message}"
    );
    let seven = Column {
        values: ColumnValues::Int64Base64(base64_of(7)),
        nulls: vec![],
    };
    let message = data_error(schema.clone(), vec![seven, texts(&[])]);
    assert!(message.contains("column `id`"), "{message}");
    assert!(message.contains("not a whole number"), "{message}");
    let short = Column {
        values: ColumnValues::TextJoined {
            separator: ';',
            text: "a;".into(),
        },
        nulls: vec![],
    };
    let message = data_error(schema, vec![ints(&[1, 2]), short]);
    assert!(message.contains("1 values"), "{message}");
}
