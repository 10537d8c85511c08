//! Every kind of Arrow array crosses into a plugin and back unchanged:
//! slices, nulls, nested and dictionary arrays, views, unions.
//!
//! The `echo` test plugin copies each batch into its memory (the host lays
//! it out buffer by buffer, `arrays.to-arrays`) and hands it back (as IPC,
//! validated by the host). Needs the test plugins: `cargo xtask test`
//! builds them and sets `SLUICE_TEST_PLUGIN_DIR`.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Decimal256Array,
    DictionaryArray, FixedSizeBinaryArray, FixedSizeListArray, Float32Array, Float64Array,
    Int8Array, Int32Array, Int64Array, IntervalMonthDayNanoArray, LargeListArray, LargeStringArray,
    ListArray, MapArray, NullArray, RecordBatch, StringArray, StringViewArray, StructArray,
    TimestampMicrosecondArray, UInt64Array, UnionArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{
    DataType, Field, Fields, Int32Type, IntervalMonthDayNano, Schema, UnionFields, i256,
};
use sluice_runtime::{Grants, Limits, Runtime, RuntimeConfig};

fn echo() -> PathBuf {
    let dir = std::env::var_os("SLUICE_TEST_PLUGIN_DIR")
        .expect("SLUICE_TEST_PLUGIN_DIR is not set: run the tests with `cargo xtask test`");
    let path = PathBuf::from(dir).join("filter-echo.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-plugins`",
        path.display()
    );
    path
}

/// `rows` rows of every type, with nulls where a type has them.
fn every_type(rows: usize) -> RecordBatch {
    let n = |i: usize| i % 7 != 3;
    let ints: Vec<Option<i32>> = (0..rows).map(|i| n(i).then_some(i as i32)).collect();
    let words: Vec<Option<String>> = (0..rows)
        .map(|i| n(i).then(|| format!("word-{}", i * 31 % 1000)))
        .collect();
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..rows)
            .map(|i| (i % 5 != 0).then(|| (0..i % 4).map(|k| Some(k as i32)).collect::<Vec<_>>())),
    );
    let large_list = {
        let values: ArrayRef = Arc::new(StringArray::from_iter(words.iter().cloned()));
        let offsets = arrow::buffer::OffsetBuffer::<i64>::from_lengths(vec![1; rows]);
        LargeListArray::new(
            Arc::new(Field::new("item", DataType::Utf8, true)),
            offsets,
            values,
            None,
        )
    };
    let fixed_list = FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::Float64, true)),
        3,
        Arc::new(Float64Array::from_iter(
            (0..rows * 3).map(|i| (i % 4 != 0).then_some(i as f64 / 8.0)),
        )),
        Some((0..rows).map(|i| i % 9 != 0).collect()),
    );
    let structs = struct_of(&ints, &words, Some((0..rows).map(|i| i % 6 != 0).collect()));
    let map = {
        let keys = StringArray::from_iter_values((0..rows).map(|i| format!("k{}", i % 3)));
        let values = Int64Array::from_iter((0..rows).map(|i| n(i).then_some(i as i64)));
        let entries = StructArray::new(
            Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Int64, true),
            ]),
            vec![Arc::new(keys) as ArrayRef, Arc::new(values)],
            None,
        );
        MapArray::new(
            Arc::new(Field::new("entries", entries.data_type().clone(), false)),
            arrow::buffer::OffsetBuffer::<i32>::from_lengths(vec![1; rows]),
            entries,
            None,
            false,
        )
    };
    let dictionary: DictionaryArray<Int32Type> = words.iter().map(|w| w.as_deref()).collect();
    let union = {
        let fields = UnionFields::try_new(
            vec![0, 1],
            vec![
                Field::new("i", DataType::Int32, true),
                Field::new("s", DataType::Utf8, true),
            ],
        )
        .unwrap();
        let type_ids: ScalarBuffer<i8> = (0..rows).map(|i| (i % 2) as i8).collect();
        UnionArray::try_new(
            fields,
            type_ids,
            None,
            vec![
                Arc::new(Int32Array::from(ints.clone())) as ArrayRef,
                Arc::new(StringArray::from_iter(words.iter().cloned())),
            ],
        )
        .unwrap()
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "int8",
            Arc::new(Int8Array::from_iter(
                (0..rows).map(|i| n(i).then_some(i as i8)),
            )),
        ),
        (
            "uint64",
            Arc::new(UInt64Array::from_iter_values(
                (0..rows).map(|i| i as u64 * 977),
            )),
        ),
        (
            "float32",
            Arc::new(Float32Array::from_iter(
                (0..rows).map(|i| n(i).then_some(i as f32 * 0.5)),
            )),
        ),
        (
            "bool",
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| n(i).then_some(i % 3 == 0)),
            )),
        ),
        (
            "utf8",
            Arc::new(StringArray::from_iter(words.iter().cloned())),
        ),
        (
            "large_utf8",
            Arc::new(LargeStringArray::from_iter(words.iter().cloned())),
        ),
        (
            "view",
            Arc::new(StringViewArray::from_iter(words.iter().map(|w| {
                w.as_ref()
                    .map(|w| format!("{w}-long-enough-to-live-in-a-data-buffer"))
            }))),
        ),
        (
            "binary",
            Arc::new(BinaryArray::from_iter(
                words.iter().map(|w| w.as_ref().map(|w| w.as_bytes())),
            )),
        ),
        (
            "fixed_binary",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    (0..rows).map(|i| n(i).then(|| (i as u32).to_le_bytes())),
                    4,
                )
                .unwrap(),
            ),
        ),
        (
            "decimal",
            Arc::new(
                Decimal128Array::from_iter(
                    (0..rows).map(|i| n(i).then_some(i as i128 * 1_000_003 - 7)),
                )
                .with_precision_and_scale(20, 3)
                .unwrap(),
            ),
        ),
        (
            "decimal256",
            Arc::new(Decimal256Array::from_iter((0..rows).map(|i| {
                n(i).then_some(i256::from_i128(i as i128) * i256::from_i128(1 << 100))
            }))),
        ),
        (
            "date",
            Arc::new(Date32Array::from_iter(
                (0..rows).map(|i| n(i).then_some(19_000 + i as i32)),
            )),
        ),
        (
            "timestamp",
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    (0..rows).map(|i| n(i).then_some(i as i64 * 1_000_000)),
                )
                .with_timezone("Asia/Tokyo"),
            ),
        ),
        (
            "interval",
            Arc::new(IntervalMonthDayNanoArray::from_iter((0..rows).map(|i| {
                n(i).then_some(IntervalMonthDayNano::new(i as i32, 2, 3))
            }))),
        ),
        ("list", Arc::new(list)),
        ("large_list", Arc::new(large_list)),
        ("fixed_list", Arc::new(fixed_list)),
        ("struct", Arc::new(structs)),
        ("map", Arc::new(map)),
        ("dictionary", Arc::new(dictionary)),
        ("union", Arc::new(union)),
        ("null", Arc::new(NullArray::new(rows))),
    ];
    nullable_batch(columns)
}

#[test]
fn every_kind_of_array_crosses_both_ways_unchanged() {
    let runtime = Runtime::new(RuntimeConfig { cache_dir: None }).unwrap();
    let plugin = runtime.load(&echo()).unwrap();
    let whole = every_type(1000);
    let schema = whole.schema();
    let mut filter = plugin
        .filter(Arc::new(Grants::default()), Limits::default())
        .unwrap()
        .into_transformer("{}", &schema)
        .unwrap();
    for (what, batch) in [
        ("a whole batch", whole.clone()),
        // Offsets that are not multiples of 8 move every bitmap off a byte.
        ("most of a batch", whole.slice(37, 900)),
        // The host compacts a few rows of a large batch before they cross.
        (
            "a few rows of a large batch",
            every_type(200_000).slice(123_457, 5),
        ),
        ("no rows", whole.slice(1000, 0)),
    ] {
        let out = filter.process(batch.clone()).unwrap();
        assert_eq!(out.len(), 1, "{what}");
        assert_eq!(out[0], batch, "{what} came back changed");
    }
}

/// Rows of the types a plugin without Arrow writes as JSON, with nulls,
/// escapes, non-ASCII text, exact decimals and zoned timestamps.
fn json_types(rows: usize) -> RecordBatch {
    use std::collections::HashMap;
    let n = |i: usize| i % 7 != 3;
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| i as i64 * 9_007_199),
            )),
        ),
        (
            "name",
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| n(i).then(|| format!("名前 {i} \"quoted\"\n\\ tab\t"))),
            )),
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from_iter(
                    (0..rows).map(|i| n(i).then_some(i as i128 * 1_000_003 - 7)),
                )
                .with_precision_and_scale(20, 3)
                .unwrap(),
            ),
        ),
        (
            "ratio",
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| n(i).then_some(i as f64 / 7.0)),
            )),
        ),
        (
            "active",
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| n(i).then_some(i % 2 == 0)),
            )),
        ),
        (
            "day",
            Arc::new(Date32Array::from_iter(
                (0..rows).map(|i| n(i).then_some(19_000 + i as i32)),
            )),
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    (0..rows).map(|i| n(i).then_some(i as i64 * 1_000_123)),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "raw",
            Arc::new(BinaryArray::from_iter(
                (0..rows).map(|i| n(i).then(|| vec![0u8, 255, i as u8])),
            )),
        ),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| {
            Field::new(*name, a.data_type().clone(), *name != "id").with_metadata(HashMap::from([
                ("doc".to_string(), format!("the {name} column")),
            ]))
        })
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// What a plugin without Arrow relies on: a schema described as fields and
/// built again from them (`schema.fields`, `schema.from-fields`), and rows
/// written as JSON and read back (`batch.to-json-lines`,
/// `batch.from-json-lines`, and as UTF-8 bytes `batch.to-json-bytes`,
/// `batch.from-json-bytes`), or as columns of plain values
/// (`batch.to-columns`, `batch.from-columns`), plain or packed, give the same batch,
/// metadata and all.
#[test]
fn rows_written_as_json_and_read_back_against_rebuilt_fields_are_unchanged() {
    for via in ["json", "json-bytes", "columns", "packed-columns"] {
        round_trip_keeps_every_value(via, json_types(3000));
    }
}

/// Columns of plain values carry more than JSON's types: narrow and
/// unsigned integers (a `uint64` past `i64::MAX` as text), `float32`,
/// every kind of string and binary, dictionaries, times, and lists,
/// structs and maps as JSON values.
#[test]
fn every_type_with_a_plain_form_crosses_as_columns_unchanged() {
    for via in ["columns", "packed-columns"] {
        round_trip_keeps_every_value(via, column_types(3000));
    }
}

fn round_trip_keeps_every_value(via: &str, whole: RecordBatch) {
    let runtime = Runtime::new(RuntimeConfig { cache_dir: None }).unwrap();
    let plugin = runtime.load(&echo()).unwrap();
    let mut filter = plugin
        .filter(Arc::new(Grants::default()), Limits::default())
        .unwrap()
        .into_transformer(&format!("{{\"via\": \"{via}\"}}"), &whole.schema())
        .unwrap();
    for (what, batch) in [
        ("a whole batch", whole.clone()),
        ("a slice", whole.slice(37, 900)),
        ("no rows", whole.slice(3000, 0)),
    ] {
        let out = filter.process(batch.clone()).unwrap();
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, batch.num_rows(), "{via}: {what}");
        if let Some(first) = out.first() {
            assert_eq!(
                arrow::compute::concat_batches(&first.schema(), &out).unwrap(),
                batch,
                "{via}: {what} came back changed"
            );
        }
    }
}

/// Rows of the types only columns of plain values carry, with nulls.
fn column_types(rows: usize) -> RecordBatch {
    use arrow::array::{LargeBinaryArray, Time64MicrosecondArray, UInt8Array};
    let n = |i: usize| i % 7 != 3;
    let words: Vec<Option<String>> = (0..rows)
        // Control characters too, so packed text needs a separator other
        // than the first it tries.
        .map(|i| n(i).then(|| format!("語 {} \"q\"\n\u{1f}", i * 31 % 1000)))
        .collect();
    let ints: Vec<Option<i32>> = (0..rows).map(|i| n(i).then_some(i as i32 - 500)).collect();
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..rows)
            .map(|i| (i % 5 != 0).then(|| (0..i % 4).map(|k| Some(k as i32)).collect::<Vec<_>>())),
    );
    let structs = struct_of(&ints, &words, None);
    let dictionary: DictionaryArray<Int32Type> = words.iter().map(|w| w.as_deref()).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "int8",
            Arc::new(Int8Array::from_iter(
                (0..rows).map(|i| n(i).then_some((i % 256) as i8)),
            )),
        ),
        (
            "uint8",
            Arc::new(UInt8Array::from_iter(
                (0..rows).map(|i| n(i).then_some(i as u8)),
            )),
        ),
        ("int32", Arc::new(Int32Array::from(ints))),
        (
            "uint64",
            Arc::new(UInt64Array::from_iter(
                (0..rows).map(|i| n(i).then_some(u64::MAX - i as u64)),
            )),
        ),
        (
            "float32",
            Arc::new(Float32Array::from_iter(
                (0..rows).map(|i| n(i).then_some(i as f32 / 8.0)),
            )),
        ),
        (
            "large_text",
            Arc::new(LargeStringArray::from_iter(words.iter().cloned())),
        ),
        (
            "text_view",
            Arc::new(StringViewArray::from_iter(words.iter().cloned())),
        ),
        (
            "large_binary",
            Arc::new(LargeBinaryArray::from_iter(
                (0..rows).map(|i| n(i).then(|| vec![i as u8; i % 5])),
            )),
        ),
        (
            "fixed_binary",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    (0..rows).map(|i| n(i).then_some([i as u8, 0, 255])),
                    3,
                )
                .unwrap(),
            ),
        ),
        ("dictionary", Arc::new(dictionary)),
        (
            "time",
            Arc::new(Time64MicrosecondArray::from_iter(
                (0..rows).map(|i| n(i).then_some(i as i64 * 1_000_003 % 86_400_000_000)),
            )),
        ),
        ("list", Arc::new(list)),
        ("struct", Arc::new(structs)),
        ("nothing", Arc::new(NullArray::new(rows))),
    ];
    nullable_batch(columns)
}

/// A batch of `columns`, every field nullable.
fn nullable_batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// A struct column of `a` (int32) and `b` (string).
fn struct_of(
    ints: &[Option<i32>],
    words: &[Option<String>],
    nulls: Option<arrow::buffer::NullBuffer>,
) -> StructArray {
    StructArray::new(
        Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]),
        vec![
            Arc::new(Int32Array::from(ints.to_vec())) as ArrayRef,
            Arc::new(StringArray::from_iter(words.iter().cloned())),
        ],
        nulls,
    )
}
