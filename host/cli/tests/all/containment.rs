//! What the sandbox promises, tried as a hostile plugin author would: a
//! panic anywhere fails the task (never a success with fewer rows, never a
//! dead process), every command has a deadline, waiting included, output
//! is capped, schemas are held to what was declared, and a grant is a wall.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sluice <args>` with these failpoints set; it must fail cleanly (exit
/// 1, not a panic's 101 or a signal) and return its stderr.
fn fails_with(s: &Scratch, args: &[&str], failpoints: &str) -> String {
    let out = s.sluice_env(args, &[("SLUICE_FAILPOINTS", failpoints)]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sluice {args:?} with {failpoints:?} should fail cleanly:\n{err}"
    );
    err
}

/// The last run in `sluice runs`: its line.
fn last_run(s: &Scratch) -> String {
    let out = s.sluice(&["runs", "--limit", "1"]);
    stdout(&out).lines().nth(1).unwrap_or_default().to_string()
}

const GENERATE: &str = "source:\n  plugin: generate\n  config: {rows: 5000, batch_size: 1000}\n";

#[test]
fn a_panic_in_the_host_fails_the_task_wherever_it_happens() {
    let s = Scratch::new();
    let file_sink = "sink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n";
    s.write(
        "source.yaml",
        format!("source:\n  plugin: misbehave\n  config: {{mode: json-lines}}\n{file_sink}exec: {{retries: 0}}\n"),
    );
    s.write(
        "filter.yaml",
        format!("{GENERATE}filters:\n  - plugin: misbehave\n    config: {{mode: json-lines}}\n{file_sink}exec: {{retries: 0}}\n"),
    );
    s.write(
        "sink.yaml",
        format!("{GENERATE}sink:\n  plugin: misbehave\n  config: {{mode: json-lines}}\nexec: {{retries: 0}}\n"),
    );
    s.write(
        "file.yaml",
        format!("{GENERATE}{file_sink}exec: {{retries: 0}}\n"),
    );

    // Without a failpoint every one of them works: JSON Lines become
    // batches in the host, in a source, a filter and a sink.
    assert_eq!(rows(&s.run_ok("source.yaml", &[])), 6);
    assert_eq!(
        std::fs::read_to_string(s.path("out/x.csv"))
            .unwrap()
            .lines()
            .count(),
        7
    );
    std::fs::remove_dir_all(s.path("out")).unwrap();
    assert_eq!(rows(&s.run_ok("filter.yaml", &["--full-refresh"])), 5000);
    std::fs::remove_dir_all(s.path("out")).unwrap();
    assert_eq!(rows(&s.run_ok("sink.yaml", &["--full-refresh"])), 5000);

    // A host function that panics under the plugin: the call fails naming
    // the plugin, the call and the panic; nothing is published.
    for (job, failpoint, expected) in [
        ("source.yaml", "batch.from-json-lines", "reader.next"),
        (
            "filter.yaml",
            "batch.from-json-lines",
            "transformer.process",
        ),
        ("sink.yaml", "batch.from-json-lines", "writer.write"),
        ("file.yaml", "codec.encoder.write", "writer.write"),
    ] {
        let _ = std::fs::remove_dir_all(s.path("out"));
        let err = fails_with(&s, &["run", job, "--full-refresh"], failpoint);
        assert!(
            err.contains("internal error: the host panicked")
                && err.contains(failpoint)
                && err.contains(expected)
                && err.contains("plugin misbehave") | err.contains("plugin file"),
            "{job}: {err}"
        );
        assert!(
            !s.path("out/x.csv").exists(),
            "{job}: published after a panic"
        );
        let run = last_run(&s);
        assert!(
            run.contains("failed") && !run.contains("running"),
            "{job}: {run}"
        );
    }

    // A panic on the pipeline's own threads: the reader's, the writer's.
    for (failpoint, expected) in [
        (
            "pipeline.reader",
            "internal error in the reader (plugin generate)",
        ),
        (
            "pipeline.writer",
            "internal error in the writer (plugin file)",
        ),
    ] {
        let _ = std::fs::remove_dir_all(s.path("out"));
        let err = fails_with(&s, &["run", "file.yaml", "--full-refresh"], failpoint);
        assert!(err.contains(expected) && err.contains(failpoint), "{err}");
        assert!(!s.path("out/x.csv").exists(), "published after a panic");
        assert!(last_run(&s).contains("failed"));
    }
    // And the state did not move: the next run reads everything.
    assert_eq!(rows(&s.run_ok("file.yaml", &[])), 5000);
}

#[test]
fn every_command_has_a_deadline_waiting_included() {
    let s = Scratch::new();
    let job = |source_mode: &str, rest: &str| {
        format!(
            "source:\n  plugin: misbehave\n  config: {{mode: {source_mode}}}\n{rest}sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: x.csv}}\nexec: {{call_timeout: 0.5, retries: 0}}\n"
        )
    };
    s.write("sleep.yaml", job("sleep", ""));
    s.write("discover.yaml", job("discover-loop", ""));
    s.write("check.yaml", job("check-sleep", ""));
    s.write(
        "filter.yaml",
        job(
            "ok",
            "filters:\n  - plugin: misbehave\n    config: {mode: sleep}\n",
        ),
    );
    s.write(
        "sink.yaml",
        "source:\n  plugin: misbehave\n  config: {mode: ok}\nsink:\n  plugin: misbehave\n  config: {mode: sleep}\nexec: {call_timeout: 0.5, retries: 0}\n",
    );
    let info_loop = std::path::PathBuf::from(std::env::var("SLUICE_TEST_PLUGIN_DIR").unwrap())
        .parent()
        .unwrap()
        .join("test-plugins-hostile/source-info-loop.wasm");
    assert!(info_loop.is_file(), "{}", info_loop.display());
    s.write(
        "info.yaml",
        format!(
            "source:\n  plugin: {}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: x.csv}}\nexec: {{call_timeout: 0.5}}\n",
            info_loop.display()
        ),
    );
    for (args, call) in [
        (vec!["run", "sleep.yaml"], "reader.next"),
        (vec!["run", "filter.yaml"], "transformer.process"),
        (vec!["run", "sink.yaml"], "writer.write"),
        (vec!["check", "check.yaml"], "check"),
        (vec!["discover", "discover.yaml"], "discover"),
        (vec!["preview", "discover.yaml"], "discover"),
        (vec!["run", "discover.yaml"], "discover"),
        (vec!["run", "info.yaml"], "info"),
        (vec!["check", "info.yaml"], "info"),
    ] {
        let started = Instant::now();
        let out = s.sluice(&args);
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}:\n{err}");
        assert!(
            err.contains(&format!("{call}: timed out after 0.5s (exec.call_timeout)")),
            "{args:?}: {err}"
        );
        // The sleeps are 100 s: a deadline that only stops running code
        // would wait them out.
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
    }
    assert!(!s.path("out/x.csv").exists());

    // `sluice plugin test` has a deadline too, and says so in its report.
    for (file, config) in [
        (info_loop.display().to_string(), None),
        (
            std::path::PathBuf::from(std::env::var("SLUICE_TEST_PLUGIN_DIR").unwrap())
                .join("source-misbehave.wasm")
                .display()
                .to_string(),
            Some(r#"{"mode": "sleep"}"#),
        ),
    ] {
        let mut args = vec!["plugin", "test", file.as_str(), "--call-timeout", "0.5"];
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        let started = Instant::now();
        let out = s.sluice(&args);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{args:?}:\n{text}");
        assert!(
            text.contains("FAIL") && text.contains("timed out after 0.5s (--call-timeout)"),
            "{args:?}: {text}"
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{args:?}");
    }
}

#[test]
fn what_a_plugin_returns_is_capped() {
    let s = Scratch::new();
    let job = |mode: &str, exec: &str| {
        format!(
            "source:\n  plugin: misbehave\n  config: {{mode: {mode}}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: x.csv}}\nexec: {{retries: 0{exec}}}\n"
        )
    };
    // A 10 MB error message: cut for display, and said so.
    s.write("error.yaml", job("huge-error", ""));
    let err = s.run_err("error.yaml");
    assert!(
        err.contains("bytes in all; exec.max_message_bytes keeps 65536"),
        "{}",
        &err[err.len().saturating_sub(300)..]
    );
    assert!(err.len() < 200_000, "stderr holds {} bytes", err.len());
    let runs = stdout(&s.sluice(&["runs"]));
    assert!(
        runs.len() < 200_000,
        "`sluice runs` printed {} bytes",
        runs.len()
    );
    // A 10 MB log line: the run goes on, the line is cut.
    s.write("log.yaml", job("huge-log", ", max_message_bytes: 1000"));
    let out = s.sluice_env(&["run", "log.yaml", "--json"], &[("SLUICE_LOG", "warn")]);
    assert!(
        out.status.success(),
        "{}",
        &stderr(&out)[..2000.min(stderr(&out).len())]
    );
    let err = stderr(&out);
    assert!(
        err.contains("exec.max_message_bytes keeps 1000"),
        "{}",
        &err[..500.min(err.len())]
    );
    assert!(err.len() < 10_000, "stderr holds {} bytes", err.len());
    // A 10 MB checkpoint over a 1 MB cap: refused, naming cap and setting.
    std::fs::remove_dir_all(s.path("out")).unwrap();
    s.write(
        "state.yaml",
        job("huge-state", ", max_state_bytes: 1000000"),
    );
    let err = s.run_err("state.yaml");
    assert!(
        err.contains(
            "a checkpoint of 10485760 bytes is over the cap of 1000000 bytes (exec.max_state_bytes)"
        ) && err.contains("plugin misbehave")
            && err.contains("reader.next"),
        "{err}"
    );
    assert!(!s.path("out/x.csv").exists(), "nothing published");
    // More than a whole call may carry (the largest cap, here 16 MiB, and
    // a little room): refused before it is copied, naming the settings.
    s.write(
        "whole.yaml",
        job(
            "huge-error, bytes: 40000000",
            ", memory_mb: 1024, max_batch_mb: 1",
        ),
    );
    let err = s.run_err("whole.yaml");
    assert!(
        err.contains("it handed the host more than 17825792 bytes in one call")
            && err.contains("exec.max_batch_mb"),
        "{}",
        &err[..err.len().min(2000)]
    );
    // A 2 MB batch over a 1 MiB cap: refused before the host holds it.
    s.write(
        "batch.yaml",
        job("huge-batch, bytes: 2000000", ", max_batch_mb: 1"),
    );
    let err = s.run_err("batch.yaml");
    assert!(
        err.contains("is over the cap of 1048576 bytes (exec.max_batch_mb)")
            && err.contains("reader.next"),
        "{err}"
    );
}

#[test]
fn check_discover_preview_and_plugin_test_survive_a_panic_in_the_host() {
    let s = Scratch::new();
    s.write("in/a.csv", "x\n1\n2\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['*.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    for (command, failpoint, call) in [
        ("check", "blob.list", "check"),
        ("discover", "codec.decoder.open", "discover"),
        ("preview", "codec.decoder.next", "reader.next"),
    ] {
        let err = fails_with(&s, &[command, "j.yaml"], failpoint);
        assert!(
            err.contains(&format!(
                "plugin file: {call}: internal error: the host panicked"
            )) && err.contains(failpoint),
            "{command}: {err}"
        );
    }
    let plugin = std::path::PathBuf::from(std::env::var("SLUICE_TEST_PLUGIN_DIR").unwrap())
        .join("source-misbehave.wasm");
    let out = s.sluice_env(
        &[
            "plugin",
            "test",
            plugin.to_str().unwrap(),
            "--config",
            r#"{"mode": "json-lines"}"#,
        ],
        &[("SLUICE_FAILPOINTS", "batch.from-json-lines")],
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL") && text.contains("the host panicked"),
        "{text}"
    );
}

#[test]
fn batches_are_held_to_the_schema_declared_and_nullability_counts() {
    let s = Scratch::new();
    let sink = "sink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.parquet}\nexec: {retries: 0}\n";
    let cases = [
        (
            "source:\n  plugin: misbehave\n  config: {mode: nullable-drift}\n",
            "column `n` is declared not null, but the batch has 1 null(s)",
            "the stream's first batch",
        ),
        (
            "source:\n  plugin: misbehave\n  config: {mode: lie-schema}\n",
            "differ from the stream's (n: Int64 not null)",
            "the schema `discover` declared",
        ),
        (
            "source:\n  plugin: misbehave\n  config: {mode: lie-nulls}\n",
            "column `n` is declared not null",
            "the schema `discover` declared",
        ),
    ];
    for (i, (source, expected, against)) in cases.iter().enumerate() {
        let name = format!("j{i}.yaml");
        s.write(&name, format!("{source}{sink}"));
        let err = s.run_err(&name);
        assert!(
            err.contains("plugin misbehave: reader.next")
                && err.contains(expected)
                && err.contains(against),
            "{name}: {err}"
        );
        assert!(!s.path("out/x.parquet").exists());
    }
    // A filter that declares a column not null and hands back nulls.
    s.write(
        "filter.yaml",
        format!(
            "{GENERATE}filters:\n  - plugin: misbehave\n    config: {{mode: lie-nulls}}\n{sink}"
        ),
    );
    let err = s.run_err("filter.yaml");
    assert!(
        err.contains("plugin misbehave: transformer.process")
            && err.contains("does not fit the declared output schema")
            && err.contains("declared not null"),
        "{err}"
    );
}

#[test]
fn a_stack_overflow_says_so() {
    let s = Scratch::new();
    s.write(
        "j.yaml",
        "source:\n  plugin: misbehave\n  config: {mode: recurse}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\nexec: {retries: 0}\n",
    );
    let err = s.run_err("j.yaml");
    assert!(
        err.contains("plugin misbehave: reader.next: trapped: stack overflow"),
        "{}",
        &err[..err.len().min(2000)]
    );
}

#[test]
fn check_refuses_a_path_that_leaves_the_grant_before_any_data_moves() {
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!("{GENERATE}sink:\n  plugin: file\n  grants: {{blob: ./a}}\n  config: {{path: ../b/x.parquet}}\n"),
    );
    let out = s.sluice(&["check", "j.yaml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sink.config.path") && err.contains("leaves the granted root"),
        "{err}"
    );
    assert!(!s.path("b").exists());
}

#[test]
fn symlinks_do_not_lead_out_of_a_grant() {
    use std::os::unix::fs::symlink;
    let s = Scratch::new();
    s.write("outside/secret.csv", "secret\nhunter2\n");
    s.write("in/a.csv", "x\n1\n2\n");
    symlink("a.csv", s.path("in/alias.csv")).unwrap();
    symlink("../outside/secret.csv", s.path("in/escape.csv")).unwrap();
    symlink("/etc/passwd", s.path("in/passwd.csv")).unwrap();
    symlink("../outside", s.path("in/dir")).unwrap();
    // Listing: the link inside the grant is a file; the others are not.
    s.write(
        "glob.yaml",
        "source:\n  plugin: file\n  grants: {blob: ./in}\n  config: {paths: ['**/*.csv']}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: all.csv}\n",
    );
    let summary = s.run_ok("glob.yaml", &[]);
    assert_eq!(rows(&summary), 4, "a.csv and alias.csv, nothing else");
    let text = std::fs::read_to_string(s.path("out/all.csv")).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("root:"),
        "{text}"
    );
    // Named outright, they are refused.
    for path in ["escape.csv", "passwd.csv", "dir/secret.csv"] {
        let name = format!("{}.yaml", path.replace('/', "_"));
        s.write(
            &name,
            format!("source:\n  plugin: file\n  grants: {{blob: ./in}}\n  config: {{paths: ['{path}']}}\nsink:\n  plugin: file\n  grants: {{blob: ./out2}}\n  config: {{path: x.csv}}\n"),
        );
        let err = s.run_err(&name);
        assert!(
            err.contains("outside the granted directory") || err.contains("no file matches"),
            "{path}: {err}"
        );
    }
    assert!(!s.path("out2/x.csv").exists());
    // A sink cannot write through a link that leads out, and writing over
    // a link replaces the link, never the file it points at.
    symlink("../outside", s.path("out/dir")).unwrap();
    symlink("../outside/secret.csv", s.path("out/victim.csv")).unwrap();
    s.write(
        "through.yaml",
        format!("{GENERATE}sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: dir/stolen.csv}}\n"),
    );
    let err = s.run_err("through.yaml");
    assert!(err.contains("outside the granted directory"), "{err}");
    s.write(
        "over.yaml",
        format!("{GENERATE}sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: victim.csv, mode: overwrite}}\n"),
    );
    s.run_ok("over.yaml", &[]);
    assert_eq!(
        std::fs::read_to_string(s.path("outside/secret.csv")).unwrap(),
        "secret\nhunter2\n"
    );
    let outside: Vec<_> = std::fs::read_dir(s.path("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(outside, ["secret.csv"]);
}

#[test]
fn state_belongs_to_what_a_job_reads_and_writes() {
    let s = Scratch::new();
    let job = |dir: &str, extra: &str| {
        format!(
            "name: fan\nsource:\n  plugin: generate\n  config: {{rows: 1000, batch_size: 100}}\nsink:\n  plugin: file\n  grants: {{blob: ./{dir}}}\n  config: {{path: 'part-{{task}}-{{part}}.csv'}}\n{extra}"
        )
    };
    s.write("j.yaml", job("run1", ""));
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 1000);
    assert_eq!(
        rows(&s.run_ok("j.yaml", &[])),
        0,
        "incremental: nothing new"
    );
    // The same job pointed at another target starts fresh, and says why.
    s.write("j.yaml", job("run2", ""));
    let second = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&second), 1000);
    assert!(
        second["notices"][0]
            .as_str()
            .unwrap()
            .contains("another source config or target"),
        "{second}"
    );
    // Back to the first: its own state is still there.
    s.write("j.yaml", job("run1", ""));
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 0);
    // A setting the plugin says changes only how it reads keeps the state.
    s.write(
        "j.yaml",
        job("run1", "").replace("batch_size: 100", "batch_size: 300"),
    );
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 0);
    // `state_key:` shares one state across targets on purpose.
    s.write("k.yaml", job("day1", "state_key: daily\n"));
    assert_eq!(rows(&s.run_ok("k.yaml", &[])), 1000);
    s.write("k.yaml", job("day2", "state_key: daily\n"));
    assert_eq!(rows(&s.run_ok("k.yaml", &[])), 0);
}

#[test]
fn a_failed_run_reports_the_rows_it_committed_and_the_next_goes_on_from_them() {
    let s = Scratch::new();
    // One partition, 1,000 rows a batch, a commit at every checkpoint; the
    // writer's thread panics at its fourth batch, after three commits.
    s.write(
        "j.yaml",
        "source:\n  plugin: generate\n  config: {rows: 5000, batch_size: 1000}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: 'part-{part}.csv'}\nexec: {retries: 0, commit_every_rows: 1000}\n",
    );
    fails_with(&s, &["run", "j.yaml"], "pipeline.writer@4");
    let run = last_run(&s);
    assert!(run.contains("failed") && run.contains(" 3000 "), "{run}");
    // The next run reads only what was not committed, into the next names.
    let again = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&again), 2000);
    let mut names: Vec<_> = std::fs::read_dir(s.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "part-000.csv",
            "part-001.csv",
            "part-002.csv",
            "part-003.csv",
            "part-004.csv"
        ]
    );
    assert_eq!(
        output_ids(&s, &serde_json::json!({"outputs": names})),
        (0..5000).collect::<Vec<_>>()
    );
}

#[test]
fn every_contract_function_answers_through_the_host() {
    let s = Scratch::new();
    s.write("in/bad.csv", "n\n1\nnot a number\n3\n");
    s.write("in/other.csv", "n\n4\n");
    s.write(
        "j.yaml",
        "source:\n  plugin: misbehave\n  grants: {blob: ./in}\n  config: {mode: contract}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: seen.csv}\n",
    );
    assert_eq!(rows(&s.run_ok("j.yaml", &[])), 1);
    assert_eq!(
        std::fs::read_to_string(s.path("out/seen.csv")).unwrap(),
        "schema_round_trip,rows_back,ipc_back,arrays_back,sliced,listed,good,rejected\n\
         true,true,true,true,2,2,2,1\n"
    );
}

#[test]
fn a_commit_whose_state_was_saved_is_published_by_the_next_run_never_written_twice() {
    let s = Scratch::new();
    s.write(
        "j.yaml",
        "source:\n  plugin: generate\n  config: {rows: 5000, batch_size: 1000}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: 'part-{part}.csv'}\nexec: {retries: 0, commit_every_rows: 1000}\n",
    );
    // The second commit's state is saved, then the process fails before it
    // makes the commit's file visible.
    fails_with(&s, &["run", "j.yaml"], "pipeline.before-publish@2");
    let visible = |s: &Scratch| -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(s.path("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let names = visible(&s);
    assert_eq!(
        names.iter().filter(|n| !n.starts_with('.')).count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with('.')).count(),
        1,
        "{names:?}"
    );
    // The next run publishes it (its rows are not read again) and goes on.
    let again = s.run_ok("j.yaml", &[]);
    assert_eq!(rows(&again), 3000);
    assert!(
        again["notices"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("published 1 object(s) an earlier run committed")),
        "{again}"
    );
    let names = visible(&s);
    assert_eq!(
        names,
        [
            "part-000.csv",
            "part-001.csv",
            "part-002.csv",
            "part-003.csv",
            "part-004.csv"
        ]
    );
    let summary = serde_json::json!({"outputs": names});
    assert_eq!(output_ids(&s, &summary), (0..5000).collect::<Vec<_>>());
}

#[test]
fn the_daily_export_example_carries_its_state_across_days() {
    let s = Scratch::new();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/daily-export.yaml");
    std::fs::copy(&example, s.path("daily-export.yaml")).unwrap();
    let day = |d: &str| {
        let out = s.sluice_env(&["run", "daily-export.yaml", "--json"], &[("DAY", d)]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(rows(&day("2026-12-06")), 100_000);
    // Another directory, the same state: nothing new to read.
    let next = day("2026-12-07");
    assert_eq!(rows(&next), 0);
    assert!(next["notices"].as_array().unwrap().is_empty(), "{next}");
    assert!(s.path("out/2026-12-06/part-0-000.parquet").is_file());
}
