//! Plugins written in Python (componentize-py) and in JavaScript and
//! TypeScript (componentize-js), built from source by `sluice plugin
//! build`, and a plugin built against the frozen `sluice:plugin@0.1.0`, in
//! jobs beside the 0.2.0 Rust plugins. Each test runs the same job with
//! the plugin of each language.

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
fn python_and_javascript_sources_run_checkpoint_and_pass_the_conformance_suite() {
    for (rel, columns) in [
        ("tests/sdk-plugins/py-synthetic", false),
        ("tests/sdk-plugins/js-synthetic", false),
        ("tests/sdk-plugins/js-synthetic", true),
    ] {
        a_source_runs_checkpoints_and_passes_the_conformance_suite(rel, columns);
    }
}

fn a_source_runs_checkpoints_and_passes_the_conformance_suite(rel: &str, as_columns: bool) {
    let plugin = sdk_plugin(rel);
    let s = Scratch::new();
    s.write(
        "job.yaml",
        format!(
            "source:\n  plugin: {}\n  config: {{rows: 5000, partitions: 3, checkpoint_every: 700, as_columns: {as_columns}}}\n\
             sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'rows/{{task}}.parquet'}}\n",
            plugin.display()
        ),
    );
    let summary = s.run_ok("job.yaml", &[]);
    assert_eq!(rows(&summary), 5000, "{rel}");
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
        "{rel}: {types:?}"
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
    for rel in ["tests/sdk-plugins/py-errors", "tests/sdk-plugins/js-errors"] {
        errors_reach_the_user(rel);
    }
}

/// A bug in the plugin's own code, as each language says it: the
/// exception and where it was thrown.
fn said_a_bug(name: &str, err: &str) -> bool {
    if name == "py-errors" {
        err.contains("internal error: KeyError: 'no such key'")
            && err.contains("Traceback (most recent call last)")
            && err.contains("app.py")
    } else {
        err.contains("internal error: TypeError") && err.contains("failOnPurpose@")
    }
}

fn errors_reach_the_user(rel: &str) {
    let plugin = sdk_plugin(rel);
    let name = rel.rsplit('/').next().unwrap();
    let s = Scratch::new();
    for (call, shown) in [
        ("check", "check"),
        ("discover", "discover"),
        ("partitions", "partitions"),
        ("open", "reader.open"),
        ("next", "reader.next"),
    ] {
        let kinds: &[&str] = if name == "js-errors" {
            &["config", "auth", "transient", "data", "bug", "throw-string"]
        } else {
            &["config", "auth", "transient", "data", "bug"]
        };
        for &kind in kinds {
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
                err.contains(&format!("plugin {name}")) && call_named,
                "{call}/{kind}: {err}"
            );
            if kind == "bug" {
                assert!(said_a_bug(name, &err), "{call}/{kind}: {err}");
            } else if kind == "throw-string" {
                assert!(
                    err.contains("internal error: a string was thrown: a bare string"),
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
fn a_failed_read_resumes_from_its_last_checkpoint_exactly_once() {
    for lang in ["py", "js"] {
        resumes_exactly_once(lang);
    }
}

fn resumes_exactly_once(lang: &str) {
    let plugin = sdk_plugin(&format!("tests/sdk-plugins/{lang}-errors"));
    let sink = sdk_plugin(&format!("tests/sdk-plugins/{lang}-jsonl-sink"));
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
fn filters_and_sinks_in_python_and_typescript_run_beside_a_plugin_built_for_0_1_0() {
    // The Python mask runs row-wise (`process`) and column-wise (`plan`,
    // `keep`, `compute`); each config below is the mask's extra settings.
    for (mask, sink, modes) in [
        (
            "tests/sdk-plugins/py-mask",
            "tests/sdk-plugins/py-jsonl-sink",
            &["", ", \"columnwise\": true"][..],
        ),
        (
            "examples/plugins/ts-mask",
            "tests/sdk-plugins/js-jsonl-sink",
            &[""][..],
        ),
    ] {
        for mode in modes {
            a_filter_and_sink_run_beside_a_0_1_0_plugin(mask, sink, mode);
        }
    }
}

fn a_filter_and_sink_run_beside_a_0_1_0_plugin(mask: &str, sink: &str, mode: &str) {
    let mask = sdk_plugin(mask);
    let sink = sdk_plugin(sink);
    let s = Scratch::new();
    // Both pass the conformance suite (its input's string column is `name`).
    let mask_config = format!("{{\"email\": \"name\"{mode}}}");
    for (plugin, config) in [(&mask, mask_config.as_str()), (&sink, "{}")] {
        let out = s.sluice(&[
            "plugin",
            "test",
            plugin.to_str().unwrap(),
            "--config",
            config,
        ]);
        assert!(
            out.status.success(),
            "{}: {}{}",
            plugin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
             filters:\n  - plugin: {}\n    config: {{email: email, drop_domains: ['@example.com']{mode}}}\n\
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

/// `my-source`, as `plugin new` wrote it, builds and passes `plugin test`.
fn the_new_source_builds_and_passes_the_conformance_suite(s: &Scratch) {
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
    the_new_source_builds_and_passes_the_conformance_suite(&s);
    // Without [tool.sluice] the build says what to add.
    s.write("bare/pyproject.toml", "[project]\nname = 'bare'\n");
    let out = s.sluice(&["plugin", "build", "bare"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("[tool.sluice]"),
        "{stderr}"
    );
}

#[test]
fn plugin_new_js_scaffolds_typescript_that_builds_typechecks_and_passes_its_tests() {
    let s = Scratch::new();
    let tools = std::env::var_os("SLUICE_TEST_JS_TOOLS");
    let typescript = std::env::var_os("SLUICE_TEST_TYPESCRIPT").map(std::path::PathBuf::from);
    for kind in ["source", "filter", "sink"] {
        let name = format!("my-{kind}");
        let out = s.sluice(&["plugin", "new", &name, "--kind", kind, "--lang", "js"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for file in [
            "package.json",
            "tsconfig.json",
            "src/app.ts",
            "test/app.test.ts",
            "README.md",
        ] {
            assert!(s.path(&format!("{name}/{file}")).is_file(), "{name}/{file}");
        }
        // The SDK it depends on is the one inside `sluice`, written out.
        let package: serde_json::Value = serde_json::from_slice(
            &std::fs::read(s.path(&format!("{name}/package.json"))).unwrap(),
        )
        .unwrap();
        let sdk = std::path::PathBuf::from(
            package["dependencies"]["@sluice/sdk"]
                .as_str()
                .unwrap()
                .strip_prefix("file:")
                .unwrap(),
        );
        let Some(tools) = &tools else { continue };
        // Its own tests pass natively: `npm test` without the npm install.
        let out = std::process::Command::new("node")
            .arg(sdk.join("bin/sluice-js-test.mjs"))
            .arg(s.path(&name))
            .env("SLUICE_JS_TOOLS", tools)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tests of {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // And it type-checks against the SDK's .d.ts, as `npm run
        // typecheck` does once npm has installed the SDK and the types.
        if let Some(typescript) = &typescript {
            let modules = s.path(&format!("{name}/node_modules"));
            std::fs::create_dir_all(modules.join("@sluice")).unwrap();
            std::os::unix::fs::symlink(&sdk, modules.join("@sluice/sdk")).unwrap();
            std::os::unix::fs::symlink(
                typescript.join("node_modules/@types"),
                modules.join("@types"),
            )
            .unwrap();
            let out = std::process::Command::new(typescript.join("node_modules/.bin/tsc"))
                .args(["--noEmit", "-p"])
                .arg(s.path(&name))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "tsc {name}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // One of them built all the way, and through the conformance suite.
    the_new_source_builds_and_passes_the_conformance_suite(&s);
    // Without "sluice" in package.json the build says what to add; with a
    // default export of the wrong kind it says which.
    s.write("bare/package.json", "{\"name\": \"bare\"}");
    let out = s.sluice(&["plugin", "build", "bare"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("\"sluice\""),
        "{stderr}"
    );
    s.write(
        "wrong/package.json",
        "{\"name\": \"wrong\", \"type\": \"module\", \"sluice\": {\"kind\": \"sink\", \"main\": \"app.js\"}}",
    );
    s.write(
        "wrong/app.js",
        "import { filter } from '@sluice/sdk';\nexport default filter({ name: 'wrong', map: (row) => row });\n",
    );
    let out = s.sluice(&["plugin", "build", "wrong"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("must be made by sink(...)"),
        "{stderr}"
    );
}

#[test]
fn the_typescript_mask_example_masks_and_drops_as_its_job_file_says() {
    let plugin = sdk_plugin("examples/plugins/ts-mask");
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let job = std::fs::read_to_string(examples.join("mask-users-ts.yaml"))
        .unwrap()
        .replace(
            "./plugins/ts-mask/target/sluice/ts-mask.wasm",
            plugin.to_str().unwrap(),
        );
    s.write("job.yaml", job);
    s.write(
        "data/users.csv",
        std::fs::read(examples.join("data/users.csv")).unwrap(),
    );
    let summary = s.run_ok("job.yaml", &[]);
    assert_eq!(rows(&summary), 4);
    let mut users = jsonl_rows(&s.path("out/users"));
    users.sort_by_key(|u| u["id"].as_i64());
    let emails: Vec<_> = users
        .iter()
        .map(|u| (u["id"].as_i64().unwrap(), u["email"].clone()))
        .collect();
    assert_eq!(
        emails,
        [
            (1, serde_json::json!("a***@corp.example.jp")),
            (3, serde_json::json!("k***@shop.example.jp")),
            (5, serde_json::Value::Null),
            (6, serde_json::json!("h***@corp.example.jp")),
        ]
    );
    // A column the input does not have fails the run naming the plugin
    // and what the input has.
    s.write(
        "wrong.yaml",
        std::fs::read_to_string(s.path("job.yaml"))
            .unwrap()
            .replace("email: email", "email: mail"),
    );
    let err = s.run_err("wrong.yaml");
    assert!(
        err.contains("ts-mask")
            && err.contains("no column `mail`")
            && err.contains("id, name, email, plan"),
        "{err}"
    );
}
