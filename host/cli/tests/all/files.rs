//! File source and sink: formats, compression, CSV options, splitting.

use std::io::Write;

use crate::support::*;

const ORDERS: &str =
    "id,name,amount,country\n1,alice,10.5,JP\n2,bob,-3,US\n3,\"carol, jr\",7,JP\n4,dave,,FR\n";

fn job(source_cfg: &str, sink_cfg: &str) -> String {
    format!(
        "source:\n  plugin: file\n  grants: {{blob: ./in}}\n  config: {source_cfg}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {sink_cfg}\n"
    )
}

#[test]
fn csv_to_parquet_to_csv_round_trip() {
    let s = Scratch::new();
    s.write("in/orders.csv", ORDERS);
    s.write(
        "to_parquet.yaml",
        job("{paths: ['*.csv']}", "{path: orders.parquet}"),
    );
    let summary = s.run_ok("to_parquet.yaml", &[]);
    assert_eq!(rows(&summary), 4);
    assert_eq!(summary["outputs"][0], "orders.parquet");

    let batch = concat(&read_parquet(&s.path("out/orders.parquet")));
    assert_eq!(schema_names(&batch), ["id", "name", "amount", "country"]);
    assert_eq!(
        batch.schema().field(0).data_type(),
        &arrow::datatypes::DataType::Int64
    );
    assert_eq!(
        batch.schema().field(2).data_type(),
        &arrow::datatypes::DataType::Float64
    );

    // And back: Parquet → CSV gives the same content.
    std::fs::create_dir_all(s.path("in2")).unwrap();
    std::fs::copy(s.path("out/orders.parquet"), s.path("in2/orders.parquet")).unwrap();
    s.write(
        "to_csv.yaml",
        job("{paths: ['*.parquet']}", "{path: back.csv}").replace("./in}", "./in2}"),
    );
    s.run_ok("to_csv.yaml", &[]);
    let back = std::fs::read_to_string(s.path("out/back.csv")).unwrap();
    assert_eq!(
        back,
        "id,name,amount,country\n1,alice,10.5,JP\n2,bob,-3.0,US\n3,\"carol, jr\",7.0,JP\n4,dave,,FR\n"
    );
    // Atomic output: no temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(s.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("sluice-tmp")), "{names:?}");
}

#[test]
fn json_lines_gzip_and_zstd() {
    let s = Scratch::new();
    // gzip CSV in, zstd JSON Lines out, then read that back to Parquet.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(ORDERS.as_bytes()).unwrap();
    s.write("in/orders.csv.gz", gz.finish().unwrap());
    s.write(
        "a.yaml",
        job("{paths: ['*.csv.gz']}", "{path: orders.jsonl.zst}"),
    );
    assert_eq!(rows(&s.run_ok("a.yaml", &[])), 4);
    let raw = std::fs::read(s.path("out/orders.jsonl.zst")).unwrap();
    let text = String::from_utf8(zstd::decode_all(&raw[..]).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        r#"{"id":1,"name":"alice","amount":10.5,"country":"JP"}"#
    );

    std::fs::create_dir_all(s.path("in2")).unwrap();
    std::fs::copy(
        s.path("out/orders.jsonl.zst"),
        s.path("in2/orders.jsonl.zst"),
    )
    .unwrap();
    s.write(
        "b.yaml",
        job(
            "{paths: ['*.jsonl.zst']}",
            "{path: orders.parquet, compression: snappy}",
        )
        .replace("./in}", "./in2}"),
    );
    assert_eq!(rows(&s.run_ok("b.yaml", &[])), 4);
    let batch = concat(&read_parquet(&s.path("out/orders.parquet")));
    assert_eq!(batch.num_rows(), 4);
    assert_eq!(
        to_csv(&batch).lines().nth(3).unwrap(),
        "3,\"carol, jr\",7.0,JP"
    );
}

#[test]
fn csv_options_and_type_overrides() {
    let s = Scratch::new();
    s.write(
        "in/weird.tsv",
        "exported by a legacy system\nid\tcode\tnote\n1\t007\tNA\n2\t042\tfine\n",
    );
    s.write(
        "j.yaml",
        job(
            "{paths: ['*.tsv'], delimiter: \"\\t\", skip_lines: 1, null_string: NA, columns: {code: string, id: int32}}",
            "{path: out.csv}",
        ),
    );
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 2);
    let out = std::fs::read_to_string(s.path("out/out.csv")).unwrap();
    // `code` stays text (leading zeros kept), NA became null (empty).
    assert_eq!(out, "id,code,note\n1,007,\n2,042,fine\n");
}

#[test]
fn many_files_in_parallel_and_split_output() {
    let s = Scratch::new();
    for i in 0..5 {
        let mut text = String::from("k,v\n");
        for r in 0..100 {
            text.push_str(&format!("{},{}\n", i * 100 + r, r % 7));
        }
        s.write(&format!("in/part-{i}.csv"), text);
    }
    s.write(
        "j.yaml",
        format!(
            "{}exec: {{parallelism: 3}}\n",
            job(
                "{paths: ['part-*.csv']}",
                "{path: 'out/{stream}.csv', max_rows_per_file: 60}"
            )
        ),
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 500);
    assert_eq!(summary["tasks"], 5);
    let outputs = summary["outputs"].as_array().unwrap();
    // 5 tasks × 2 files each (60 + 40 rows).
    assert_eq!(outputs.len(), 10, "{outputs:?}");
    let mut keys = Vec::new();
    for o in outputs {
        let text = std::fs::read_to_string(s.path("out").join(o.as_str().unwrap())).unwrap();
        for line in text.lines().skip(1) {
            keys.push(line.split(',').next().unwrap().parse::<u32>().unwrap());
        }
    }
    keys.sort();
    assert_eq!(keys, (0..500).collect::<Vec<_>>(), "every row exactly once");
}

#[test]
fn output_is_split_by_size() {
    let s = Scratch::new();
    let mut text = String::from("k,v\n");
    for r in 0..20_000 {
        text.push_str(&format!("{r},value-{r}\n"));
    }
    s.write("in/big.csv", text);
    // Small batches, so the encoder's byte count grows as the task writes.
    s.write(
        "j.yaml",
        job(
            "{paths: [big.csv], batch_size: 1000}",
            "{path: 'sized/{task}-{part}.csv', max_bytes_per_file: 50000}",
        ),
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 20_000);
    let outputs = summary["outputs"].as_array().unwrap();
    assert!(outputs.len() >= 4, "{outputs:?}");
    let mut keys = Vec::new();
    for o in outputs {
        let path = s.path("out").join(o.as_str().unwrap());
        // A file is closed once it reached the size: past it by at most a batch.
        assert!(
            std::fs::metadata(&path).unwrap().len() < 50_000 + 30_000,
            "{path:?}"
        );
        let text = std::fs::read_to_string(path).unwrap();
        keys.extend(
            text.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse::<u32>().unwrap()),
        );
    }
    keys.sort();
    assert_eq!(
        keys,
        (0..20_000).collect::<Vec<_>>(),
        "every row exactly once"
    );
}

#[test]
fn preview_and_discover() {
    let s = Scratch::new();
    s.write("in/orders.csv", ORDERS);
    s.write("j.yaml", job("{paths: ['*.csv']}", "{path: x.parquet}"));
    let out = s.sluice(&["preview", "j.yaml", "--rows", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("alice") && text.contains("bob") && !text.contains("carol"),
        "{text}"
    );
    assert!(
        !s.path("out/x.parquet").exists(),
        "preview must write nothing"
    );

    let out = s.sluice(&["discover", "j.yaml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stream files") && text.contains("amount") && text.contains("Float64"),
        "{text}"
    );

    let out = s.sluice(&["check", "j.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_big_file_read_in_byte_ranges() {
    let s = Scratch::new();
    let mut text = String::from("k,label\n");
    for i in 0..3000 {
        text.push_str(&format!("{i},row number {i}\n"));
    }
    s.write("in/big.csv", &text);
    s.write(
        "j.yaml",
        format!(
            "{}exec: {{parallelism: 2}}\n",
            job(
                "{paths: ['big.csv'], split_bytes: 4096}",
                "{path: 'parts/{task}.csv'}"
            )
        ),
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 3000);
    let expected_tasks = text.len().div_ceil(4096);
    assert_eq!(summary["tasks"], expected_tasks);
    let mut keys = Vec::new();
    for o in summary["outputs"].as_array().unwrap() {
        let part = std::fs::read_to_string(s.path("out").join(o.as_str().unwrap())).unwrap();
        let mut lines = part.lines();
        assert_eq!(
            lines.next(),
            Some("k,label"),
            "every part has the real header"
        );
        for line in lines {
            let (k, label) = line.split_once(',').unwrap();
            assert_eq!(label, format!("row number {k}"));
            keys.push(k.parse::<u32>().unwrap());
        }
    }
    keys.sort();
    assert_eq!(
        keys,
        (0..3000).collect::<Vec<_>>(),
        "every row exactly once"
    );
}

#[test]
fn existing_outputs_are_kept_unless_overwrite() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n");
    s.write("append.yaml", job("{paths: ['*.csv']}", "{path: out.csv}"));
    s.write(
        "overwrite.yaml",
        job("{paths: ['*.csv']}", "{path: o.csv, mode: overwrite}"),
    );
    assert_eq!(s.run_ok("append.yaml", &[])["outputs"][0], "out.csv");
    assert_eq!(s.run_ok("append.yaml", &[])["outputs"][0], "out-1.csv");
    assert_eq!(s.run_ok("append.yaml", &[])["outputs"][0], "out-2.csv");
    s.run_ok("overwrite.yaml", &[]);
    s.write("in/a.csv", "x\n2\n");
    assert_eq!(s.run_ok("overwrite.yaml", &[])["outputs"][0], "o.csv");
    assert_eq!(
        std::fs::read_to_string(s.path("out/o.csv")).unwrap(),
        "x\n2\n"
    );
    assert!(!s.path("out/o-1.csv").exists());
}

#[test]
fn parquet_file_read_in_row_group_ranges() {
    let s = Scratch::new();
    s.write(
        "make.yaml",
        "source:\n  plugin: generate\n  config: {rows: 10000, batch_size: 1000}\nsink:\n  plugin: file\n  grants: {blob: ./in}\n  config: {path: big.parquet, row_group_rows: 1000}\n",
    );
    s.run_ok("make.yaml", &[]);
    s.write(
        "j.yaml",
        format!(
            "{}exec: {{parallelism: 2}}\n",
            job(
                "{paths: ['big.parquet'], split_bytes: 1024}",
                "{path: 'parts/{task}.csv'}"
            )
        ),
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 10000);
    assert_eq!(summary["tasks"], 10, "one task per row group");
    let ids = output_ids(&s, &summary);
    assert_eq!(
        ids,
        (0..10000).collect::<Vec<_>>(),
        "every row exactly once"
    );
}
