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
            || err.contains("leaves the granted directory")
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
