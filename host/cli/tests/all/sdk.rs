//! Plugins written in Python (componentize-py, built from source by
//! `sluice plugin build`) and a plugin built against the frozen
//! `sluice:plugin@0.1.0`, in jobs beside the 0.2.0 Rust plugins.

use std::collections::BTreeSet;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use crate::support::*;

/// The `id`s in every JSON Lines file under `dir`, sorted.
fn jsonl_ids(dir: &std::path::Path) -> Vec<i64> {
    jsonl_column(dir, "id")
}

/// Every row of every JSON Lines file under `dir`.
fn jsonl_rows(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    rows.push(serde_json::from_str(line).unwrap());
                }
            }
        }
    }
    rows
}

/// Integer column `key` of every row under `dir`, sorted.
fn jsonl_column(dir: &std::path::Path, key: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = jsonl_rows(dir)
        .iter()
        .map(|row| row[key].as_i64().unwrap_or_else(|| panic!("{row}")))
        .collect();
    ids.sort();
    ids
}

fn parquet_ids(dir: &std::path::Path) -> Vec<i64> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        for batch in read_parquet(&entry.path()) {
            let col = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>();
            ids.extend(col.values().iter().copied());
        }
    }
    ids.sort();
    ids
}

#[test]
fn a_python_source_runs_checkpoints_and_passes_the_conformance_suite() {
    let plugin = python_plugin("tests/sdk-plugins/py-synthetic");
    let s = Scratch::new();
    s.write(
        "job.yaml",
        format!(
            "source:\n  plugin: {}\n  config: {{rows: 5000, partitions: 3, checkpoint_every: 700}}\n\
             sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'rows/{{task}}.parquet'}}\n",
            plugin.display()
        ),
    );
    let summary = s.run_ok("job.yaml", &[]);
    assert_eq!(rows(&summary), 5000);
    assert_eq!(
        parquet_ids(&s.path("out/rows")),
        (0..5000).collect::<Vec<_>>()
    );
    // Every type came through as declared: decimals exact, dates, zones.
    let file = std::fs::read_dir(s.path("out/rows"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let batch = concat(&read_parquet(&file.path()));
    let schema = batch.schema();
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "Int64",
            "Utf8",
            "Decimal128(12, 2)",
            "Float64",
            "Boolean",
            "Date32",
            "Timestamp(µs, \"UTC\")",
            "Utf8"
        ],
        "{types:?}"
    );
    // The second run starts from each partition's last checkpoint: nothing new.
    assert_eq!(rows(&s.run_ok("job.yaml", &[])), 0);

    let out = s.sluice(&[
        "plugin",
        "test",
        plugin.to_str().unwrap(),
        "--config",
        "{\"rows\": 300, \"checkpoint_every\": 100}",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sluice:plugin@0.2.0"));
}

#[test]
fn every_error_kind_from_every_call_reaches_the_user_typed_and_named() {
    let plugin = python_plugin("tests/sdk-plugins/py-errors");
    let s = Scratch::new();
    for (call, shown) in [
        ("check", "check"),
        ("discover", "discover"),
        ("partitions", "partitions"),
        ("open", "reader.open"),
        ("next", "reader.next"),
    ] {
        for kind in ["config", "auth", "transient", "data", "bug"] {
            s.write(
                "job.yaml",
                format!(
                    "source:\n  plugin: {}\n  config: {{fail_in: {call}, kind: {kind}}}\n\
                     sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'x.csv'}}\n\
                     exec: {{retries: 0}}\n",
                    plugin.display()
                ),
            );
            // A run does not call a source's `check`; `sluice check` does.
            let err = if call == "check" {
                let out = s.sluice(&["check", "job.yaml"]);
                assert_eq!(out.status.code(), Some(1), "{call}/{kind}");
                String::from_utf8_lossy(&out.stderr).into_owned()
            } else {
                s.run_err("job.yaml")
            };
            // `discover` failing shows wherever the run first asks for streams.
            let call_named = err.contains(&format!(": {shown}: ")) || call == "discover";
            assert!(
                err.contains("plugin py-errors") && call_named,
                "{call}/{kind}: {err}"
            );
            if kind == "bug" {
                assert!(
                    err.contains("internal error: KeyError: 'no such key'")
                        && err.contains("Traceback (most recent call last)")
                        && err.contains("app.py"),
                    "{call}/{kind}: {err}"
                );
            } else {
                assert!(
                    err.contains(&format!(
                        "{kind} error: {kind} failure in {call}, on purpose"
                    )),
                    "{call}/{kind}: {err}"
                );
            }
        }
    }
    // A row that does not fit the declared schema is the host's data error.
    s.write(
        "bad-row.yaml",
        format!(
            "source:\n  plugin: {}\n  config: {{fail_in: next, kind: bad-row}}\n\
             sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'x.csv'}}\n",
            plugin.display()
        ),
    );
    let err = s.run_err("bad-row.yaml");
    assert!(err.contains("data") && err.contains("JSON Lines"), "{err}");
}

#[test]
fn a_failed_python_read_resumes_from_its_last_checkpoint_exactly_once() {
    let plugin = python_plugin("tests/sdk-plugins/py-errors");
    let sink = python_plugin("tests/sdk-plugins/py-jsonl-sink");
    let s = Scratch::new();
    let job = |fail: &str| {
        format!(
            "name: resume\nsource:\n  plugin: {}\n  config: {{fail_in: {fail}, kind: transient, rows: 10}}\n\
             sink:\n  plugin: {}\n  grants: {{blob: ./out}}\n  config: {{prefix: data}}\n\
             exec: {{retries: 0, commit_every_rows: 1}}\n",
            plugin.display(),
            sink.display()
        )
    };
    s.write("fail.yaml", job("next"));
    let err = s.run_err("fail.yaml");
    assert!(err.contains("transient failure in next"), "{err}");
    // Committed at the first checkpoint (rows 0..=2), then it failed at 5.
    assert_eq!(jsonl_column(&s.path("out/data"), "n"), [0, 1, 2]);
    s.write("ok.yaml", job("none"));
    let summary = s.run_ok("ok.yaml", &[]);
    assert_eq!(rows(&summary), 7);
    assert_eq!(
        jsonl_column(&s.path("out/data"), "n"),
        (0..10).collect::<Vec<_>>()
    );
    // No partial file was left behind by the failed task.
    let names: BTreeSet<String> = std::fs::read_dir(s.path("out/data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.ends_with(".jsonl")),
        "{names:?}"
    );
}

#[test]
fn a_python_filter_and_sink_run_beside_a_plugin_built_for_0_1_0() {
    let mask = python_plugin("tests/sdk-plugins/py-mask");
    let sink = python_plugin("tests/sdk-plugins/py-jsonl-sink");
    let s = Scratch::new();
    let mut csv = String::from("id,email\n");
    for i in 0..3000 {
        let domain = if i % 10 == 0 {
            "example.com"
        } else {
            "corp.jp"
        };
        csv.push_str(&format!("{i},user{i}@{domain}\n"));
    }
    s.write("in/users.csv", csv);
    s.write(
        "mask.yaml",
        format!(
            "source:\n  plugin: file\n  grants: {{blob: ./in}}\n  config: {{paths: [users.csv]}}\n\
             filters:\n  - plugin: {}\n    config: {{email: email, drop_domains: ['@example.com']}}\n\
             sink:\n  plugin: {}\n  grants: {{blob: ./out}}\n  config: {{prefix: masked}}\n",
            mask.display(),
            sink.display()
        ),
    );
    // `sluice check` reaches the Python sink's own check (write, read
    // back and delete a probe through its blob grant).
    let out = s.sluice(&["check", "mask.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = s.run_ok("mask.yaml", &[]);
    assert_eq!(rows(&summary), 2700);
    let masked = jsonl_rows(&s.path("out/masked"));
    assert_eq!(masked.len(), 2700);
    for row in &masked {
        let email = row["email"].as_str().unwrap();
        assert!(email.starts_with("u***@corp.jp"), "{row}");
        assert_ne!(row["id"].as_i64().unwrap() % 10, 0);
    }

    // A source built against the frozen 0.1.0 contract, then a 0.2.0 Rust
    // filter and a 0.2.0 Python sink, in one job.
    s.write(
        "mixed.yaml",
        format!(
            "source:\n  plugin: legacy-v0-1\n  config: {{rows: 2000, partitions: 3}}\n\
             filters:\n  - plugin: select\n    config: {{where: 'id >= 1000'}}\n\
             sink:\n  plugin: {}\n  grants: {{blob: ./out}}\n  config: {{prefix: mixed}}\n",
            sink.display()
        ),
    );
    let summary = s.run_ok("mixed.yaml", &[]);
    assert_eq!(rows(&summary), 1000);
    assert_eq!(
        jsonl_ids(&s.path("out/mixed")),
        (1000..2000).collect::<Vec<_>>()
    );
    // Its checkpoints were saved: the next run resumes after them.
    assert_eq!(rows(&s.run_ok("mixed.yaml", &[])), 0);
}

#[test]
fn the_0_1_0_plugin_passes_its_conformance_and_shows_its_version() {
    let s = Scratch::new();
    let dir = std::env::var("SLUICE_TEST_PLUGIN_DIR").expect("run through cargo xtask test");
    let legacy = format!("{dir}/source-legacy-v0-1.wasm");
    let out = s.sluice(&["plugin", "test", &legacy, "--config", "{\"rows\": 600}"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sluice:plugin@0.1.0"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.sluice(&["plugin", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listed}"))
            .to_string()
    };
    assert!(
        line("legacy-v0-1").contains("sluice:plugin@0.1.0"),
        "{listed}"
    );
    assert!(line("select").contains("sluice:plugin@0.2.0"), "{listed}");
}

#[test]
fn plugin_new_python_scaffolds_what_builds_and_passes_its_tests() {
    let s = Scratch::new();
    for kind in ["source", "filter", "sink"] {
        let name = format!("my-{kind}");
        let out = s.sluice(&["plugin", "new", &name, "--kind", kind, "--lang", "python"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for file in ["pyproject.toml", "app.py", "test_app.py", "README.md"] {
            assert!(s.path(&format!("{name}/{file}")).is_file(), "{name}/{file}");
        }
        // Its own tests pass natively (pytest from the test command's venv).
        if let Some(python) = std::env::var_os("SLUICE_TEST_PYTEST") {
            let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/src");
            let out = std::process::Command::new(python)
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
                .current_dir(s.path(&name))
                .env("PYTHONPATH", sdk)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pytest in {name}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // One of them built all the way (each build takes 15–20 s).
    let out = s.sluice(&["plugin", "build", "my-source"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let built = s.path("my-source/target/sluice/my-source.wasm");
    let out = s.sluice(&[
        "plugin",
        "test",
        built.to_str().unwrap(),
        "--config",
        "{\"rows\": 1000}",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without [tool.sluice] the build says what to add.
    s.write("bare/pyproject.toml", "[project]\nname = 'bare'\n");
    let out = s.sluice(&["plugin", "build", "bare"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("[tool.sluice]"),
        "{stderr}"
    );
}
