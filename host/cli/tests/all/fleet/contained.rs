//! A fleet keeps the sandbox's promises: a misbehaving transfer fails its
//! task while the worker goes on, state follows the target, and a lost
//! worker's files and runs are cleaned up after.

use std::time::{Duration, Instant};

use super::Fleet;
use crate::postgres::{pg, schema};
use crate::support::*;

#[test]
fn misbehaving_transfers_fail_their_tasks_and_the_worker_keeps_leasing() {
    let mut f = Fleet::new("misbehave");
    let out = f.s.path("out");
    let sink = format!(
        "sink:\n  plugin: file\n  grants: {{blob: '{}'}}\n  config: {{path: x.csv}}\n",
        out.display()
    );
    for (name, source) in [
        (
            "panics",
            "source:\n  plugin: misbehave\n  config: {mode: json-lines}\n",
        ),
        (
            "sleeps",
            "source:\n  plugin: misbehave\n  config: {mode: sleep}\n",
        ),
        (
            "fine",
            "source:\n  plugin: generate\n  config: {rows: 1000}\n",
        ),
    ] {
        f.s.write(
            &format!("proj/jobs/{name}.yaml"),
            format!("{source}{sink}exec: {{call_timeout: 0.5, retries: 0}}\n"),
        );
        f.s.write(
            &format!("proj/{name}.yaml"),
            format!("tasks:\n  - name: {name}\n    transfer: jobs/{name}.yaml\n"),
        );
    }
    f.ok(&["push", "proj", "--project", "p"]);
    f.server_env(
        "worker",
        &[],
        &[("SLUICE_FAILPOINTS", "batch.from-json-lines")],
    );
    f.ok(&["start", "p", "panics"]);
    assert_eq!(f.wait_attempt(1, Duration::from_secs(60)), "failed");
    let error = f.value("SELECT error FROM tasks WHERE name = '+panics+panics'");
    assert!(
        error.contains("plugin misbehave: reader.next: internal error: the host panicked")
            && error.contains("batch.from-json-lines"),
        "{error}"
    );
    f.ok(&["start", "p", "sleeps"]);
    let started = Instant::now();
    assert_eq!(f.wait_attempt(2, Duration::from_secs(60)), "failed");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a 100 s sleep was waited out"
    );
    let error = f.value("SELECT error FROM tasks WHERE name = '+sleeps+sleeps'");
    assert!(
        error.contains("timed out after 0.5s (exec.call_timeout)"),
        "{error}"
    );
    // Nothing was published, the runs say failed, and the same worker goes on.
    assert!(!out.join("x.csv").exists());
    assert_eq!(
        f.value("SELECT string_agg(status, ',' ORDER BY id) FROM runs"),
        "failed,failed"
    );
    f.ok(&["start", "p", "fine"]);
    assert_eq!(f.wait_attempt(3, Duration::from_secs(60)), "succeeded");
    assert!(
        f.workers[0].try_wait().unwrap().is_none(),
        "the worker died"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("x.csv"))
            .unwrap()
            .lines()
            .count(),
        1001
    );
}

#[test]
fn a_transfer_task_keeps_state_per_target_and_full_refresh_starts_over() {
    let mut f = Fleet::new("targets");
    f.s.write(
        "proj/jobs/gen.yaml",
        format!(
            "source:\n  plugin: generate\n  config: {{rows: 1000}}\nsink:\n  plugin: file\n  grants: {{blob: '{}/${{outdir}}'}}\n  config: {{path: 'part-{{task}}-{{part}}.csv'}}\n",
            f.s.path("out").display()
        ),
    );
    f.s.write(
        "proj/fan.yaml",
        "params: {outdir: run1}\ntasks:\n  - name: export\n    transfer: jobs/gen.yaml\n",
    );
    f.ok(&["push", "proj", "--project", "p"]);
    f.server("worker", &[]);
    let mut attempt = 0;
    let mut rows = |f: &Fleet, args: &[&str]| -> i64 {
        attempt += 1;
        f.ok(args);
        assert_eq!(
            f.wait_attempt(attempt, Duration::from_secs(60)),
            "succeeded"
        );
        f.number("SELECT rows FROM runs ORDER BY id DESC LIMIT 1")
    };
    assert_eq!(rows(&f, &["start", "p", "fan", "-p", "outdir=run1"]), 1000);
    assert_eq!(rows(&f, &["start", "p", "fan", "-p", "outdir=run1"]), 0);
    // Another target: its own state, so everything (it was 0 rows before
    // state followed what a transfer writes).
    assert_eq!(rows(&f, &["start", "p", "fan", "-p", "outdir=run2"]), 1000);
    assert_eq!(
        rows(
            &f,
            &["start", "p", "fan", "-p", "outdir=run1", "--full-refresh"]
        ),
        1000
    );
    assert_eq!(
        rows(&f, &["retry", "4"]),
        0,
        "a retry refreshes only when asked"
    );
    assert_eq!(rows(&f, &["retry", "4", "--full-refresh"]), 1000);
}

#[test]
fn a_lost_worker_leaves_no_staged_files_and_the_retry_keeps_the_names() {
    let mut f = Fleet::new("files");
    schema("fleet_files");
    pg("CREATE TABLE fleet_files.src (id int8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
        INSERT INTO fleet_files.src SELECT g, md5(g::text), timestamptz '2024-01-01' + g * interval '1 ms'
          FROM generate_series(1, 300000) g;");
    let out = f.s.path("lake");
    f.s.write(
        "proj/jobs/export.yaml",
        format!(
            "connections:\n  app: {{url: \"${{env:APP_DB_URL}}\"}}\n\
             source: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: fleet_files.src, incremental: {{cursor: [updated_at]}}, batch_rows: 5000}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'part-{{task}}-{{part}}.parquet'}}}}\n\
             exec: {{commit_every_rows: 20000}}\n",
            out.display()
        ),
    );
    f.s.write(
        "proj/export.yaml",
        "tasks:\n  - name: export\n    transfer: jobs/export.yaml\n",
    );
    f.ok(&["push", "proj", "--project", "p"]);
    f.server("worker", &[]);
    f.ok(&["start", "p", "export"]);
    // Kill the worker once some parts are published and one is staged.
    let parts = |hidden: bool| -> usize {
        std::fs::read_dir(&out)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with('.') == hidden)
                    .count()
            })
            .unwrap_or(0)
    };
    let t0 = Instant::now();
    while !(parts(false) >= 3 && parts(true) >= 1) {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no parts:\n{}",
            f.server_logs()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    f.workers[0].kill().unwrap();
    f.workers[0].wait().unwrap();
    assert!(
        parts(true) >= 1,
        "the kill left nothing staged: the test proved little"
    );
    f.server("worker", &[]);
    assert_eq!(f.wait_attempt(1, Duration::from_secs(120)), "succeeded");
    // Nothing staged is left, and the parts are numbered as one
    // uninterrupted run would have numbered them: 000, 001, … with no gap.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    let expected: Vec<String> = (0..names.len())
        .map(|n| format!("part-0-{n:03}.parquet"))
        .collect();
    assert_eq!(names, expected);
    // Every row exactly once.
    let mut ids = Vec::new();
    for name in &names {
        for batch in read_parquet(&out.join(name)) {
            ids.extend(int64s(&batch, "id"));
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=300_000).collect::<Vec<i64>>());
    // The dead worker's run is failed, the journal is empty.
    assert_eq!(
        f.value("SELECT status FROM runs ORDER BY id LIMIT 1"),
        "failed"
    );
    assert_eq!(f.value("SELECT count(*) FROM staged_objects"), "0");
}
