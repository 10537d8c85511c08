//! generate → select → file, checked row by row against the unfiltered data.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Decimal128Type, Int64Type};

use crate::support::*;

const GENERATE: &str = "source:\n  plugin: generate\n  config: {rows: 20000, seed: 7, batch_size: 3000, partitions: 2}\n";

#[test]
fn predicate_projection_rename_cast() {
    let s = Scratch::new();
    // Everything, unfiltered: the reference.
    s.write(
        "all.yaml",
        format!("{GENERATE}sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'all/{{task}}.parquet'}}\n"),
    );
    assert_eq!(rows(&s.run_ok("all.yaml", &[])), 20000);
    let mut all = Vec::new();
    for entry in std::fs::read_dir(s.path("out/all")).unwrap() {
        all.extend(read_parquet(&entry.unwrap().path()));
    }
    let all = concat(&all);

    s.write(
        "filtered.yaml",
        format!(
            "{GENERATE}filters:\n  - plugin: select\n    config:\n      where: \"price > 50000 and return_flag in ('alpha', 'charlie') and not id < 100\"\n      keep: [id, price, return_flag]\n      rename: {{return_flag: flag}}\n      cast: {{price: float64}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'filtered/{{task}}.parquet'}}\n"
        ),
    );
    let summary = s.run_ok("filtered.yaml", &[]);

    // Expected: computed here, from the reference, without the plugin.
    let ids = all
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let price = all
        .column_by_name("price")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    let flag = all
        .column_by_name("return_flag")
        .unwrap()
        .as_string::<i32>();
    let mut expected: Vec<(i64, f64, String)> = (0..all.num_rows())
        .filter(|&i| {
            price.value(i) > 5_000_000
                && ["alpha", "charlie"].contains(&flag.value(i))
                && ids.value(i) >= 100
        })
        .map(|i| {
            (
                ids.value(i),
                price.value(i) as f64 / 100.0,
                flag.value(i).to_string(),
            )
        })
        .collect();
    expected.sort_by_key(|r| r.0);
    assert!(!expected.is_empty() && expected.len() < 20000);
    assert_eq!(rows(&summary), expected.len() as u64);

    let mut got = Vec::new();
    for entry in std::fs::read_dir(s.path("out/filtered")).unwrap() {
        for b in read_parquet(&entry.unwrap().path()) {
            assert_eq!(schema_names(&b), ["id", "price", "flag"]);
            let id = b.column(0).as_primitive::<Int64Type>();
            let p = b.column(1).as_primitive::<arrow::datatypes::Float64Type>();
            let f = b.column(2).as_string::<i32>();
            for i in 0..b.num_rows() {
                assert!(!p.is_null(i));
                got.push((id.value(i), p.value(i), f.value(i).to_string()));
            }
        }
    }
    got.sort_by_key(|r| r.0);
    assert_eq!(got, expected);
}

#[test]
fn unknown_column_is_a_clear_error() {
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!("{GENERATE}filters:\n  - plugin: select\n    config: {{where: 'prise > 0'}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: x.csv}}\n"),
    );
    let err = s.run_err("j.yaml");
    assert!(err.contains("unknown column `prise`"), "{err}");
    assert!(err.contains("columns are: id, order_key"), "{err}");
    assert!(!s.path("out/x.csv").exists());
}
