//! Bad input gets a clear error naming the file, the line, the config path.

use crate::support::*;

#[test]
fn config_errors_name_the_path() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n");
    s.write(
        "missing.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {format: csv}\n",
    );
    let err = s.run_err("missing.yaml");
    assert!(
        err.contains("missing.yaml")
            && err.contains("sink.config")
            && err.contains("\"path\" is a required property"),
        "{err}"
    );

    s.write(
        "typo.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv'], delimeter: ';'}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let err = s.run_err("typo.yaml");
    assert!(
        err.contains("source.config") && err.contains("delimeter"),
        "{err}"
    );

    s.write(
        "grant.yaml",
        "source:\n  plugin: file\n  grants: {network: all}\n  config: {paths: ['*.csv']}\nsink:\n  plugin: file\n  config: {path: x.csv}\n",
    );
    let err = s.run_err("grant.yaml");
    assert!(
        err.contains("grant.yaml") && err.contains("source.grants") && err.contains("network"),
        "{err}"
    );

    s.write("syntax.yaml", "source:\n  plugin: [file\n");
    let err = s.run_err("syntax.yaml");
    assert!(err.contains("syntax.yaml") && err.contains("line"), "{err}");

    s.write(
        "noplugin.yaml",
        "source: {plugin: nope}\nsink: {plugin: file, config: {path: x}}\n",
    );
    let err = s.run_err("noplugin.yaml");
    assert!(err.contains("no source plugin `nope`"), "{err}");
}

#[test]
fn malformed_csv_names_file_and_line() {
    let s = Scratch::new();
    s.write("in/bad.csv", "a,b\n1,2\n3,4\n5\n6,7\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let err = s.run_err("j.yaml");
    assert!(err.contains("bad.csv") && err.contains("line"), "{err}");
    assert!(!s.path("out/x.csv").exists(), "nothing half-written");
}

#[test]
fn ungranted_capability_is_refused() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  config: {paths: ['*.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let err = s.run_err("j.yaml");
    assert!(err.contains("not granted"), "{err}");
}

#[test]
fn paths_cannot_escape_the_grant() {
    let s = Scratch::new();
    s.write("secret.csv", "x\n1\n");
    s.write("in/a.csv", "x\n1\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['../secret.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let err = s.run_err("j.yaml");
    assert!(
        err.contains("bad glob")
            || err.contains("leaves the granted root")
            || err.contains("no file"),
        "{err}"
    );
    assert!(!s.path("out/x.csv").exists());
}

#[test]
fn misbehaving_plugins_fail_the_run_cleanly() {
    let s = Scratch::new();
    let job = |mode: &str| {
        format!(
            "source:\n  plugin: misbehave\n  config: {{mode: {mode}}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: x.csv}}\nexec: {{call_timeout: 0.5, memory_mb: 64, retries: 0}}\n"
        )
    };
    for (mode, expected) in [
        ("drift", "schema changed mid-stream"),
        ("loop", "timed out after 0.5s"),
        ("oom", "out of memory: the cap is 64 MiB"),
        ("trap", "trapped"),
        ("garbage", "not Arrow IPC"),
    ] {
        s.write(&format!("{mode}.yaml"), job(mode));
        let err = s.run_err(&format!("{mode}.yaml"));
        assert!(
            err.contains(expected) && err.contains("misbehave"),
            "{mode}: {err}"
        );
    }
    assert!(!s.path("out/x.csv").exists());
}

#[test]
fn a_plugin_built_for_another_wit_version_is_refused_naming_both() {
    let s = Scratch::new();
    s.write(
        "j.yaml",
        "source:\n  plugin: future-wit\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let err = s.run_err("j.yaml");
    assert!(
        err.contains("sluice:plugin@1.0.0")
            && err.contains("sluice:plugin@0.2.x or 0.1.x")
            && err.contains("future-wit"),
        "{err}"
    );
}

#[test]
fn invalid_rows_are_skipped_counted_and_kept() {
    let s = Scratch::new();
    s.write(
        "in/mixed.csv",
        "id,amount\n1,10\n2,abc\n3,30\n4\n5,50,extra\n6,60\n7,\"70\"\n",
    );
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv'], on_invalid: skip, batch_size: 2, columns: {id: int64, amount: int64}}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: good.csv}\n",
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 4);
    assert_eq!(summary["rejected"], 3);
    assert_eq!(
        std::fs::read_to_string(s.path("out/good.csv")).unwrap(),
        "id,amount\n1,10\n3,30\n6,60\n7,70\n"
    );
    let files = summary["reject_files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].as_str().unwrap()).unwrap();
    let rejects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5, 6]);
    assert_eq!(rejects[0]["text"], "2,abc");
    assert_eq!(rejects[0]["file"], "mixed.csv");
    assert_eq!(rejects[2]["text"], "5,50,extra");
    // The human summary says so too.
    let out = s.sluice(&["run", "j.yaml", "--full-refresh"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rejected 3 invalid row(s)"), "{text}");
}

#[test]
fn invalid_json_lines_are_skipped_and_kept() {
    let s = Scratch::new();
    s.write(
        "in/events.jsonl",
        "{\"id\": 1, \"kind\": \"a\"}\n{\"id\": 2, \"kind\": \"b\"\nnot json\n{\"id\": \"three\", \"kind\": \"c\"}\n{\"id\": 4, \"kind\": \"d\"}\n",
    );
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.jsonl'], on_invalid: skip, columns: {id: int64}}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: good.csv}\n",
    );
    let summary = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&summary), 2);
    assert_eq!(summary["rejected"], 3);
    assert_eq!(
        std::fs::read_to_string(s.path("out/good.csv")).unwrap(),
        "id,kind\n1,a\n4,d\n"
    );
    let file = summary["reject_files"][0].as_str().unwrap().to_string();
    let lines: Vec<u64> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["line"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(lines, [2, 3, 4]);
}

#[test]
fn check_probes_source_and_sink() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n");
    s.write(
        "ok.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let out = s.sluice(&["check", "ok.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !s.path("out/.sluice-check").exists(),
        "the probe is cleaned up"
    );
    s.write(
        "nofiles.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.parquet']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let out = s.sluice(&["check", "nofiles.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("no file matches"), "{err}");
}
