//! Workflows run in place (`sluice workflow run`) on the embedded store:
//! the same queue and semantics as a fleet, in one process.

use crate::support::*;

fn run_flow(s: &Scratch, file: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["workflow", "run", file];
    args.extend_from_slice(extra);
    s.sluice(&args)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn workflow_runs_transfers_loops_conditions_and_shell_in_order() {
    let s = Scratch::new();
    s.write(
        "proj/daily.yaml",
        r#"timezone: Asia/Tokyo
params: {greeting: hello}
tasks:
  - name: make
    transfer:
      source: {plugin: generate, config: {rows: 1000, seed: 7}}
      sink:
        plugin: file
        grants: {blob: ../out}
        config: {path: "gen-${session_date_compact}.csv", mode: overwrite}
  - name: regions
    for_each: {region: [jp, us, eu]}
    parallel: 2
    do:
      - name: note
        sh: echo "${greeting} ${region} ${session_date}" > ../out/${region}.txt
      - name: count
        sh: wc -l < ../out/gen-${session_date_compact}.csv > ../out/${region}.count
  - name: never
    if: "${greeting} == bye"
    sh: touch ../out/never
  - name: last
    sh: ls ../out > ../out/listing.txt
"#,
    );
    std::fs::create_dir_all(s.path("out")).unwrap();
    // 2026-12-01T22:00Z is Dec 2 in Tokyo: session dates are the zone's.
    let out = run_flow(
        &s,
        "proj/daily.yaml",
        &["--session", "2026-12-01T22:00:00Z", "--allow-sh"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("succeeded"), "{printed}");
    assert!(
        printed.contains("+daily+regions+[region=eu]+note"),
        "{printed}"
    );
    let lines = std::fs::read_to_string(s.path("out/gen-20261202.csv"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 1001);
    for region in ["jp", "us", "eu"] {
        assert_eq!(
            std::fs::read_to_string(s.path(&format!("out/{region}.txt"))).unwrap(),
            format!("hello {region} 2026-12-02\n")
        );
        // `count` ran after `make`: it saw the whole file.
        assert_eq!(
            std::fs::read_to_string(s.path(&format!("out/{region}.count")))
                .unwrap()
                .trim(),
            "1001"
        );
    }
    assert!(!s.path("out/never").exists(), "`if` did not skip");
    // `last` ran after every region's tasks.
    let listing = std::fs::read_to_string(s.path("out/listing.txt")).unwrap();
    assert!(
        listing.contains("eu.count") && listing.contains("us.count"),
        "{listing}"
    );
    // The attempt and its tasks are in the store, with logs.
    let attempts = text(&s.sluice(&["attempts"]));
    assert!(
        attempts.contains("succeeded") && attempts.contains("proj/daily"),
        "{attempts}"
    );
    let logs = text(&s.sluice(&["logs", "1", "--task", "make"]));
    assert!(
        logs.contains("transfer done") && logs.contains("\"rows\":1000"),
        "{logs}"
    );
    // A parameter given on the command line wins over the workflow's.
    let out = run_flow(
        &s,
        "proj/daily.yaml",
        &[
            "--session",
            "2026-12-01T22:00:00Z",
            "--allow-sh",
            "-p",
            "greeting=bye",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.path("out/never").exists(), "`if` should hold now");
    assert!(
        std::fs::read_to_string(s.path("out/jp.txt"))
            .unwrap()
            .starts_with("bye jp")
    );
}

#[test]
fn failed_task_retries_then_wakes_on_error_and_cancels_the_rest() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("out")).unwrap();
    s.write(
        "proj/flaky.yaml",
        r#"tasks:
  - name: first
    sh: echo ran >> ../out/first
  - name: flaky
    retry: {limit: 2, interval: 100ms, backoff: exponential}
    sh: echo try >> ../out/tries; exit 3
    on_error:
      - name: cleanup
        sh: echo cleanup >> ../out/cleanup
  - name: after
    sh: touch ../out/after
on_error:
  - name: alert
    sh: echo "alert ${session_date}" >> ../out/alert
"#,
    );
    let out = run_flow(
        &s,
        "proj/flaky.yaml",
        &["--allow-sh", "--session", "2026-03-01"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("attempt 1 failed"), "{printed}");
    assert!(printed.contains("exited with exit status: 3"), "{printed}");
    // Three tries (the first and two retries), then both handlers, once.
    assert_eq!(
        std::fs::read_to_string(s.path("out/tries"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert_eq!(
        std::fs::read_to_string(s.path("out/cleanup")).unwrap(),
        "cleanup\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("out/alert")).unwrap(),
        "alert 2026-03-01\n"
    );
    assert!(
        !s.path("out/after").exists(),
        "a task after the failure ran"
    );
    let tasks = text(&s.sluice(&["tasks", "1"]));
    assert!(
        tasks.contains("cancelled") && tasks.contains("+flaky+after"),
        "{tasks}"
    );
    let flaky = tasks
        .lines()
        .find(|l| l.ends_with("+flaky+flaky"))
        .unwrap_or_else(|| panic!("{tasks}"));
    assert!(flaky.contains("failed") && flaky.contains(" 2 "), "{flaky}");
}

#[test]
fn bad_workflows_fail_before_anything_runs_with_the_place_named() {
    let s = Scratch::new();
    s.write(
        "proj/bad.yaml",
        "tasks:\n  - name: a\n    echo: hello ${nobody}\n",
    );
    let out = run_flow(&s, "proj/bad.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out);
    assert!(
        e.contains("bad.yaml") && e.contains("tasks[0].echo") && e.contains("${nobody}"),
        "{e}"
    );
    s.write("proj/typo.yaml", "tasks:\n  - name: a\n    ehco: hi\n");
    let e = text(&run_flow(&s, "proj/typo.yaml", &[]));
    assert!(
        e.contains("typo.yaml: tasks[0]") && e.contains("ehco"),
        "{e}"
    );
    // Shell tasks are off unless allowed: a clear error, no retry.
    s.write("proj/sh.yaml", "tasks:\n  - {name: a, sh: 'true'}\n");
    let e = text(&run_flow(&s, "proj/sh.yaml", &[]));
    assert!(
        e.contains("sh tasks are off") && e.contains("--allow-sh"),
        "{e}"
    );
    // `workflow check` expands without running and shows the graph.
    s.write(
        "proj/ok.yaml",
        "schedule: {daily: '07:00'}\ntasks:\n  - name: l\n    for_each: {n: [1, 2]}\n    do:\n      - {name: e, echo: '${n}'}\n",
    );
    let out = s.sluice(&["workflow", "check", "proj/ok.yaml"]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("+ok+l+[n=2]+e") && printed.contains("next run"),
        "{printed}"
    );
}

#[test]
fn the_example_row_loop_exports_each_flag_found_in_the_database() {
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/project");
    for name in [
        "flags.yaml",
        "jobs/orders-to-db.yaml",
        "jobs/flag-from-db.yaml",
    ] {
        s.write(
            &format!("project/{name}"),
            std::fs::read(examples.join(name)).unwrap(),
        );
    }
    crate::postgres::pg("DROP TABLE IF EXISTS shop_orders");
    let dw = crate::postgres::pg_url();
    let out = s.sluice_env(
        &[
            "workflow",
            "run",
            "project/flags.yaml",
            "--session",
            "2026-12-02",
            "-p",
            "rows=3000",
        ],
        &[("DW_DB_URL", dw.as_str())],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut total = 0;
    for flag in ["alpha", "bravo", "charlie"] {
        let batches = read_parquet(&s.path(&format!("out/20261202/db/flag={flag}/orders.parquet")));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{flag}");
        total += rows;
    }
    assert_eq!(total, 3000, "every order exported once, by its flag");
}

#[test]
fn the_example_project_runs_in_place() {
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/project");
    for name in ["daily.yaml", "jobs/orders.yaml", "jobs/by-flag.yaml"] {
        s.write(
            &format!("project/{name}"),
            std::fs::read(examples.join(name)).unwrap(),
        );
    }
    let out = run_flow(
        &s,
        "project/daily.yaml",
        &["--allow-sh", "--session", "2026-12-02", "-p", "rows=3000"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut total = 0;
    for flag in ["alpha", "bravo", "charlie"] {
        let batches = read_parquet(&s.path(&format!("out/20261202/flag={flag}/orders.parquet")));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{flag}");
        total += rows;
    }
    assert_eq!(total, 3000);
    let printed = text(&out);
    assert!(
        printed.contains("skipped") && printed.contains("+daily+notify"),
        "{printed}"
    );
}

#[test]
fn for_each_row_loops_over_rows_the_task_before_it_loaded() {
    let s = Scratch::new();
    let dw = crate::postgres::pg_url();
    crate::postgres::pg("DROP TABLE IF EXISTS inplace_rows_regions");
    s.write(
        "data/regions.csv",
        "region,since,weight\njp,2026-01-01,1.5\nus,2026-02-01,\neu,2026-03-01,2\n",
    );
    s.write(
        "proj/rows.yaml",
        r#"tasks:
  - name: load
    transfer:
      connections: {dw: {url: "${dw}"}}
      source: {plugin: file, grants: {blob: ../data}, config: {paths: [regions.csv]}}
      sink:
        plugin: postgres
        grants: {sql: [dw]}
        config: {connection: dw, table: inplace_rows_regions, mode: replace}
  - name: each
    for_each_row:
      url: ${dw}
      query: SELECT region, since, weight FROM inplace_rows_regions ORDER BY region
    parallel: 2
    do:
      - name: note
        sh: echo "${region} ${since} ${weight}" > ../out/${region}
  - name: broken
    if: ${check_errors}
    for_each_row: {url: "${dw}", query: "SELECT region FROM no_such_table"}
    do:
      - {name: never, sh: touch ../out/never}
"#,
    );
    std::fs::create_dir_all(s.path("out")).unwrap();
    let dw_param = format!("dw={dw}");
    let out = run_flow(
        &s,
        "proj/rows.yaml",
        &["--allow-sh", "-p", &dw_param, "-p", "check_errors=false"],
    );
    assert!(out.status.success(), "{}", text(&out));
    // The loop ran after the load: it saw every row, with its types.
    for (region, line) in [
        ("jp", "jp 2026-01-01 1.5"),
        ("us", "us 2026-02-01 "),
        ("eu", "eu 2026-03-01 2.0"),
    ] {
        assert_eq!(
            std::fs::read_to_string(s.path(&format!("out/{region}")))
                .unwrap()
                .trim_end_matches('\n'),
            line
        );
    }
    let printed = text(&out);
    assert!(printed.contains("+rows+each+[region=jp,"), "{printed}");

    // A query that fails names the loop and says why; nothing of it runs.
    let out = run_flow(
        &s,
        "proj/rows.yaml",
        &["--allow-sh", "-p", &dw_param, "-p", "check_errors=true"],
    );
    assert!(!out.status.success());
    let printed = text(&out);
    assert!(
        printed.contains("for_each_row") && printed.contains("no_such_table"),
        "{printed}"
    );
    assert!(!s.path("out/never").exists());
}
