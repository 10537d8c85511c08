//! The fleet through its REST API, the CLI's `--server` mode and the web
//! UI: tokens, roles, hostile archives, schema fuzzing, a real browser.

use std::time::{Duration, Instant};

use super::{Fleet, output_text};
use crate::support::*;

/// The REST API of a real `sluice server` on PostgreSQL: a token made by
/// `sluice admin token create`, a workflow started, followed to its end,
/// its log read, retried from the failed task; the first admin from the
/// environment signs in; a secret set through the API appears in no
/// response and no log line.
#[test]
fn the_rest_api_drives_a_fleet_with_tokens_and_a_signed_in_admin() {
    const PLANTED: &str = "planted-api-secret-9Xq";
    let mut f = Fleet::new("api");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    f.s.write(
        "proj/flow.yaml",
        "params: {out: /nowhere}\ntasks:\n  \
         - name: make\n    transfer:\n      source: {plugin: generate, config: {rows: 500, seed: 3}}\n      \
         sink: {plugin: file, grants: {blob: '${out}'}, config: {path: made.csv, mode: overwrite}}\n  \
         - {name: one, sh: 'echo hello-from-one'}\n  - {name: two, sh: 'test -f ${out}/fixed'}\n",
    );
    f.ok(&["push", "proj", "--project", "p", "--revision", "v1"]);
    let token = f.token("operator", "ci");
    let listed = f.ok(&["admin", "token", "list"]);
    assert!(
        listed.contains("ci") && !listed.contains(&token),
        "{listed}"
    );

    let port = f.api_server();
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: Option<&str>| {
        http(port, method, path, &[("authorization", &auth)], body).unwrap()
    };
    assert_eq!(
        http(port, "GET", "/api/attempts", &[], None)
            .unwrap()
            .status,
        401
    );

    let params = format!(
        r#"{{"project": "p", "workflow": "flow", "params": {{"out": "{}"}}}}"#,
        out.display()
    );
    let started = call("POST", "/api/attempts", Some(&params));
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.json()["id"].as_i64().unwrap();
    let wait = |id: i64| {
        let t0 = Instant::now();
        loop {
            let a = call("GET", &format!("/api/attempts/{id}"), None).json();
            if a["status"] != "running" {
                return a["status"].as_str().unwrap().to_string();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "attempt {id} still running"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(wait(id), "failed");
    let tasks = call("GET", &format!("/api/attempts/{id}/tasks"), None).json();
    let task = |name: &str| {
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"].as_str().unwrap().ends_with(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(task("one")["state"], "succeeded");
    assert_eq!(task("two")["state"], "failed");
    let log = call(
        "GET",
        &format!("/api/tasks/{}/log", task("one")["id"]),
        None,
    )
    .json();
    assert!(
        log["text"].as_str().unwrap().contains("hello-from-one"),
        "{log}"
    );
    assert_eq!(log["complete"], true);

    std::fs::write(out.join("fixed"), "").unwrap();
    let retried = call(
        "POST",
        &format!("/api/attempts/{id}/retry"),
        Some(r#"{"resume": true}"#),
    );
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(wait(retried.json()["id"].as_i64().unwrap()), "succeeded");

    let workers = call("GET", "/api/workers", None).json();
    assert_eq!(workers.as_array().unwrap().len(), 1, "{workers}");
    let metrics = call("GET", "/metrics", None);
    assert!(
        metrics.body.contains("sluice_workers_alive 1"),
        "{}",
        metrics.body
    );
    // What the worker counted: the transfer's rows per plugin (it ran once:
    // the retry resumed after it), the failed try, the plugins' calls.
    let t0 = Instant::now();
    let wanted = [
        "sluice_plugin_rows_total{plugin=\"generate\",stage=\"source\"} 500\n",
        "sluice_plugin_rows_total{plugin=\"file\",stage=\"sink\"} 500\n",
        "sluice_tasks_succeeded_total{kind=\"transfer\"} 1\n",
        "sluice_tasks_failed_total{kind=\"sh\"} 1\n",
        "sluice_plugin_call_seconds_bucket{plugin=\"file\",call=\"writer.commit\",le=\"+Inf\"} 1\n",
    ];
    loop {
        let metrics = call("GET", "/metrics", None).body;
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|l| !metrics.contains(l))
            .collect();
        if missing.is_empty() {
            let sink = metrics
                .lines()
                .find(|l| {
                    l.starts_with("sluice_plugin_bytes_total{plugin=\"file\",stage=\"sink\"}")
                })
                .unwrap_or_else(|| panic!("no sink bytes: {metrics}"));
            let bytes: u64 = sink.rsplit(' ').next().unwrap().parse().unwrap();
            let written = std::fs::metadata(out.join("made.csv")).unwrap().len();
            assert_eq!(bytes, written, "{sink}");
            let reads = metrics
                .lines()
                .find(|l| l.starts_with("sluice_plugin_call_seconds_count{plugin=\"generate\",call=\"reader.next\"}"))
                .unwrap_or_else(|| panic!("no generate reads: {metrics}"));
            assert!(!reads.ends_with(" 0"), "{reads}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "metrics lack {missing:?}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The admin signs in with the password from the environment, and sets
    // a secret with the session's CSRF token.
    let login = http(
        port,
        "POST",
        "/api/auth/login",
        &[],
        Some(r#"{"user": "root", "password": "root-password-1"}"#),
    )
    .unwrap();
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = login.header("set-cookie").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = login.json()["csrf_token"].as_str().unwrap().to_string();
    let value = format!(r#"{{"value": "{PLANTED}"}}"#);
    let no_csrf = http(
        port,
        "PUT",
        "/api/projects/p/secrets/dw",
        &[("cookie", &cookie)],
        Some(&value),
    )
    .unwrap();
    assert_eq!(no_csrf.status, 403);
    let set = http(
        port,
        "PUT",
        "/api/projects/p/secrets/dw",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        Some(&value),
    )
    .unwrap();
    assert_eq!(set.status, 204, "{}", set.body);
    let as_operator = call("GET", "/api/projects/p/secrets", None);
    assert_eq!(as_operator.status, 403, "an operator may not list secrets");
    let listed = http(
        port,
        "GET",
        "/api/projects/p/secrets",
        &[("cookie", &cookie)],
        None,
    )
    .unwrap();
    assert!(
        listed.body.contains("\"dw\"") && !listed.body.contains(PLANTED),
        "{}",
        listed.body
    );
    let logs = f.server_logs();
    assert!(
        logs.contains("secret set") && !logs.contains(PLANTED),
        "{logs}"
    );
}

/// The web UI in headless Chromium: sign in, start a workflow and watch it
/// succeed, open its log, make one fail and retry it from the failed task,
/// sign out. Screenshots are kept in `SLUICE_TEST_ARTIFACTS` (`cargo xtask
/// test` prints where).
/// A gzipped tar with one entry whose header is written by hand, so the
/// hostile names and kinds a normal archiver refuses can be sent.
fn hostile_archive(path: &str, kind: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..path.len()].copy_from_slice(path.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

#[test]
fn the_cli_drives_a_server_through_its_api_with_a_token_and_hostile_archives_are_refused() {
    const PLANTED: &str = "planted-cli-secret-7Hw";
    let mut f = Fleet::new("remote");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    f.s.write(
        "proj/flow.yaml",
        "params: {out: /nowhere}\ntasks:\n  - {name: one, sh: 'echo hello-remote'}\n  - {name: two, sh: 'test -f ${out}/fixed'}\n",
    );
    f.s.write(
        "proj/daily.yaml",
        "schedule: {daily: '02:00'}\ntasks:\n  - {name: one, sh: 'true'}\n",
    );
    let (admin, viewer) = (f.token("admin", "admin"), f.token("viewer", "viewer"));
    let port = f.api_server();
    let server = format!("http://127.0.0.1:{port}");
    // No database for these commands: an unreachable URL proves they use
    // the API alone.
    let remote = |token: &str, args: &[&str]| {
        f.s.sluice_env(
            args,
            &[
                ("SLUICE_SERVER", server.as_str()),
                ("SLUICE_TOKEN", token),
                ("SLUICE_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
            ],
        )
    };
    let remote_ok = |token: &str, args: &[&str]| {
        let out = remote(token, args);
        assert!(
            out.status.success(),
            "sluice {args:?}:\n{}",
            output_text(&out)
        );
        output_text(&out)
    };
    // What the fleet commands print through the API is what they print
    // on the store.
    let same = |args: &[&str]| {
        let (there, here) = (remote(&viewer, args).stdout, f.sluice(args).stdout);
        assert_eq!(
            String::from_utf8_lossy(&there),
            String::from_utf8_lossy(&here),
            "sluice {args:?} through the API and on the store"
        );
    };

    // A viewer may not push; without a token, nothing.
    let refused = remote(
        &viewer,
        &["push", "proj", "--project", "p", "--revision", "v1"],
    );
    assert_eq!(refused.status.code(), Some(1));
    let text = output_text(&refused);
    assert!(
        text.contains("403") && text.contains("role is too low"),
        "{text}"
    );
    let anonymous = remote("", &["attempts"]);
    assert!(
        output_text(&anonymous).contains("401"),
        "{}",
        output_text(&anonymous)
    );

    let pushed = remote_ok(
        &admin,
        &["push", "proj", "--project", "p", "--revision", "v1"],
    );
    assert!(
        pushed.contains("pushed 2 files") && pushed.contains("daily, flow"),
        "{pushed}"
    );
    let again = remote(
        &admin,
        &["push", "proj", "--project", "p", "--revision", "v1"],
    );
    assert!(
        output_text(&again).contains("already has a revision v1"),
        "{}",
        output_text(&again)
    );
    let schedules = remote_ok(&viewer, &["schedule", "list"]);
    assert!(
        schedules
            .lines()
            .any(|l| l.starts_with("yes ") && l.contains("p/daily")),
        "{schedules}"
    );
    remote_ok(&admin, &["schedule", "disable", "p", "daily"]);
    let schedules = remote_ok(&viewer, &["schedule", "list"]);
    assert!(
        schedules
            .lines()
            .any(|l| l.starts_with("no ") && l.contains("p/daily")),
        "{schedules}"
    );

    remote_ok(&admin, &["secrets", "set", "p", "key", "--value", PLANTED]);
    let secrets = remote_ok(&admin, &["secrets", "list", "p"]);
    assert!(
        secrets.contains("key") && !secrets.contains(PLANTED),
        "{secrets}"
    );

    let out_param = format!("out={}", out.display());
    let started = remote_ok(&admin, &["start", "p", "flow", "-p", &out_param]);
    assert!(started.contains("started attempt 1"), "{started}");
    assert_eq!(f.wait_attempt(1, Duration::from_secs(60)), "failed");
    // The same table as `sluice tasks` on the store prints.
    let tasks = remote_ok(&viewer, &["tasks", "1"]);
    same(&["tasks", "1"]);
    assert!(
        tasks.contains("+flow+two") && tasks.contains("failed"),
        "{tasks}"
    );
    let logs = remote_ok(&viewer, &["logs", "1", "--task", "one"]);
    assert!(logs.contains("hello-remote"), "{logs}");
    let denied = remote(&viewer, &["retry", "1", "--resume"]);
    assert!(
        output_text(&denied).contains("403"),
        "{}",
        output_text(&denied)
    );
    std::fs::write(out.join("fixed"), "").unwrap();
    let retried = remote_ok(&admin, &["retry", "1", "--resume"]);
    assert!(retried.contains("attempt 2 retries attempt 1"), "{retried}");
    assert_eq!(f.wait_attempt(2, Duration::from_secs(60)), "succeeded");
    let attempts = remote_ok(&viewer, &["attempts", "--project", "p"]);
    assert!(
        attempts.contains("succeeded") && attempts.contains("failed"),
        "{attempts}"
    );
    same(&["attempts", "--project", "p"]);
    // A page at a time, the same through the API as on the store.
    let first = remote_ok(&viewer, &["attempts", "--limit", "1"]);
    assert!(first.contains("(more: --before 2)"), "{first}");
    same(&["attempts", "--limit", "1"]);
    same(&["schedule", "list"]);

    // The plugins the server has, as they describe themselves.
    let listed = http(
        port,
        "GET",
        "/api/plugins?limit=500",
        &[("authorization", &format!("Bearer {viewer}"))],
        None,
    )
    .unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let plugins = listed.json();
    let generate = plugins["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "generate")
        .unwrap_or_else(|| panic!("no generate plugin: {plugins}"));
    assert_eq!(generate["kind"], "source");
    assert!(generate["config_schema"].is_object(), "{generate}");

    // Hostile archives: refused by name, no revision made, nothing written
    // outside the project (nor anywhere: a push writes no files at all).
    let auth = format!("Bearer {admin}");
    let outside = f.s.path("escaped.yaml");
    for (label, archive, expect) in [
        (
            "parent",
            hostile_archive("../escaped.yaml", b'0', b"x: 1\n", ""),
            "`..`",
        ),
        (
            "absolute",
            hostile_archive(&outside.display().to_string(), b'0', b"x: 1\n", ""),
            "absolute",
        ),
        (
            "symlink",
            hostile_archive("flow.yaml", b'2', b"", "/etc/passwd"),
            "symbolic link",
        ),
        (
            "hardlink",
            hostile_archive("flow.yaml", b'1', b"", "/etc/passwd"),
            "hard link",
        ),
        (
            "bomb",
            hostile_archive("big.yaml", b'0', &vec![b'a'; 100 << 20], ""),
            "bytes",
        ),
        (
            "garbage",
            b"PK\x03\x04 not a tarball".to_vec(),
            "not a readable",
        ),
    ] {
        let reply = http_body(
            port,
            "POST",
            &format!("/api/projects/evil/revisions?revision={label}"),
            &[("authorization", &auth)],
            Some(("application/gzip", &archive)),
        )
        .unwrap();
        assert_eq!(reply.status, 422, "{label}: {}", reply.body);
        let error = reply.json();
        assert_eq!(error["error"]["code"], "invalid", "{label}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expect), "{label}: {message}");
    }
    assert!(!outside.exists());
    assert_eq!(
        f.number("SELECT count(*) FROM revisions r JOIN projects p ON p.id = r.project_id WHERE p.name = 'evil'"),
        0
    );
    let logs = f.server_logs();
    assert!(!logs.contains(PLANTED), "a secret in the server log");
}

#[test]
fn fuzzing_the_api_from_its_openapi_document_finds_no_5xx_and_nothing_off_schema() {
    let schemathesis =
        std::env::var("SLUICE_TEST_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let mut f = Fleet::new("fuzz");
    f.s.write(
        "proj/flow.yaml",
        "schedule: {daily: '02:00'}\ntasks:\n  - {name: one, sh: 'echo fuzzed'}\n",
    );
    f.ok(&["push", "proj", "--project", "p", "--revision", "v1"]);
    let token = f.token("admin", "fuzz");
    let port = f.api_server();
    f.ok(&["start", "p", "flow"]);
    f.wait_attempt(1, Duration::from_secs(60));
    // Listing the plugins compiles each one the first time (the server
    // starts that at boot); the fuzzer's 10 s read timeout is for the
    // API, not for a cold compile on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let auth = format!("Bearer {token}");
        match http(
            port,
            "GET",
            "/api/plugins",
            &[("authorization", &auth)],
            None,
        ) {
            Ok(reply) if reply.status == 200 => break,
            Ok(reply) => panic!("GET /api/plugins: {} {}", reply.status, reply.body),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("GET /api/plugins never answered: {e}"),
        }
    }
    let report = std::env::var_os("SLUICE_TEST_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| f.s.path("artifacts"))
        .join("schemathesis");
    let out = std::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,ignored_auth",
        ])
        // Revoking tokens would revoke the fuzzer's own.
        .args(["--exclude-path", "/api/tokens/{id}"])
        .args([
            "--max-examples",
            "30",
            "--seed",
            "20261202",
            "--workers",
            "2",
        ])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .env("NO_COLOR", "1")
        // Its hypothesis database goes in the scratch directory, not the clone.
        .current_dir(f.s.path(""))
        .output()
        .unwrap_or_else(|e| panic!("{schemathesis}: {e} (cargo xtask test installs it from PyPI)"));
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "schemathesis found problems (report in {}):\n{text}\nserver log:\n{}",
        report.display(),
        f.server_logs()
    );
    // It really ran the operations: the summary counts them.
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn the_web_ui_in_a_real_browser() {
    let mut f = Fleet::new("ui");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    f.s.write(
        "proj/greet.yaml",
        "tasks:\n  - {name: say, sh: 'echo hello-from-the-ui'}\n",
    );
    f.s.write(
        "proj/flaky.yaml",
        format!(
            "tasks:\n  - {{name: first, sh: 'echo first'}}\n  - {{name: check, sh: 'test -f {}/fixed'}}\n",
            out.display()
        ),
    );
    f.ok(&["push", "proj", "--project", "shop", "--revision", "v1"]);
    let port = f.api_server();
    let shots = std::env::var_os("SLUICE_TEST_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("sluice-test-artifacts"))
        .join("ui");
    let b = crate::browser::Browser::start(shots);
    let long = Duration::from_secs(60);
    b.open(&format!("http://127.0.0.1:{port}/"));
    b.type_into("#user", "root");
    b.type_into("#password", "wrong-password");
    b.click("#sign-in-button");
    b.wait_text("#sign-in-error", long, |t| {
        t.contains("wrong user name or password")
    });
    b.open(&format!("http://127.0.0.1:{port}/"));
    b.type_into("#user", "root");
    b.type_into("#password", "root-password-1");
    b.screenshot("1-sign-in");
    b.click("#sign-in-button");
    b.wait_text("#who", long, |t| t.contains("root (admin)"));
    b.element("tr[data-workflow='shop/greet']", long);
    b.screenshot("2-workflows");

    // Start greet and watch it succeed, then read its log.
    b.click("tr[data-workflow='shop/greet'] button[data-action='start']");
    b.wait_text("h1 .status", long, |t| t == "succeeded");
    b.click("tr[data-task$='+say']");
    b.wait_text("#log", long, |t| t.contains("hello-from-the-ui"));
    b.screenshot("3-attempt-and-log");

    // flaky fails at `check`; fix the cause, retry from the failed task.
    b.click("a[data-nav='workflows']");
    b.click("tr[data-workflow='shop/flaky'] button[data-action='start']");
    b.wait_text("h1 .status", long, |t| t == "failed");
    b.wait_text("tr[data-task$='+check'] .status", long, |t| t == "failed");
    b.screenshot("4-failed");
    let failed_url = b.url();
    std::fs::write(out.join("fixed"), "").unwrap();
    b.click("button[data-action='retry-failed']");
    let t0 = Instant::now();
    while b.url() == failed_url {
        assert!(t0.elapsed() < long, "the retry did not open a new attempt");
        std::thread::sleep(Duration::from_millis(100));
    }
    b.wait_text("h1 .status", long, |t| t == "succeeded");
    // Resumed: `first` succeeded before and is not run again.
    b.wait_text("tr[data-task$='+check'] .status", long, |t| {
        t == "succeeded"
    });
    b.screenshot("5-retried");

    // The fleet page shows the worker; sign out ends the session.
    b.click("a[data-nav='fleet']");
    b.element("tr[data-worker]", long);
    b.wait_text("#plugins", long, |t| t.contains("generate"));
    b.screenshot("6-fleet");
    b.click("#sign-out");
    b.element("#sign-in", long);
    b.open(&format!("http://127.0.0.1:{port}/#/fleet"));
    b.element("#sign-in", long);
    b.screenshot("7-signed-out");
}
