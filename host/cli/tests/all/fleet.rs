//! A fleet on a real PostgreSQL: `sluice server` processes sharing one
//! database, killed, stopped and cut off while they work. Each test has its
//! own database (`sluice_fleet_<name>`), created here.

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::{differences, pg, pg_to_pg, pg_url, schema};
use crate::support::*;

const KEY: &str = "8f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";

struct Fleet {
    s: Scratch,
    url: String,
    workers: Vec<Child>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Fleet {
    fn new(name: &str) -> Fleet {
        let db = format!("sluice_fleet_{name}");
        pg(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        pg(&format!("CREATE DATABASE {db}"));
        let base = pg_url();
        let url = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
        Fleet {
            s: Scratch::new(),
            url,
            workers: Vec::new(),
        }
    }

    /// A fleet whose store is the database at `url` (made by the caller).
    fn on(url: String) -> Fleet {
        Fleet {
            s: Scratch::new(),
            url,
            workers: Vec::new(),
        }
    }

    fn env(&self) -> Vec<(&str, String)> {
        vec![
            ("SLUICE_DATABASE_URL", self.url.clone()),
            ("SLUICE_SECRET_KEY", KEY.to_string()),
            ("APP_DB_URL", pg_url()),
        ]
    }

    fn sluice(&self, args: &[&str]) -> Output {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.s.sluice_env(args, &env)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.sluice(args);
        assert!(
            out.status.success(),
            "sluice {args:?}:\n{}",
            output_text(&out)
        );
        output_text(&out)
    }

    /// A new API token with this role: what `sluice admin token create`
    /// prints on stdout (its notice goes to stderr).
    fn token(&self, role: &str, name: &str) -> String {
        let created = self.sluice(&["admin", "token", "create", "--role", role, "--name", name]);
        assert!(created.status.success(), "{}", output_text(&created));
        let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
        assert!(token.starts_with("sluice_"), "{token}");
        token
    }

    /// Start `sluice server` with these roles and flags; returns its index.
    fn server(&mut self, roles: &str, extra: &[&str]) -> usize {
        self.server_env(roles, extra, &[])
    }

    /// [`Fleet::server`] with extra environment variables.
    fn server_env(&mut self, roles: &str, extra: &[&str], more_env: &[(&str, &str)]) -> usize {
        let mut args = vec![
            "server",
            "--roles",
            roles,
            "--allow-sh",
            "--lease-seconds",
            "2",
            "--poll-seconds",
            "1",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let env = self.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(more_env);
        let log = std::fs::File::create(self.s.path(&format!("server-{}.log", self.workers.len())))
            .unwrap();
        let child = self
            .s
            .command(&args, &env)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.workers.push(child);
        self.workers.len() - 1
    }

    /// Start `sluice server` with every role on a port of its own, the
    /// first admin (`root`, `root-password-1`) from the environment; wait
    /// until it is ready and return the port.
    fn api_server(&mut self) -> u16 {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = self.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([
            ("SLUICE_ADMIN_USER", "root"),
            ("SLUICE_ADMIN_PASSWORD", "root-password-1"),
        ]);
        let log = self.s.path(&format!("server-{}.log", self.workers.len()));
        let args = [
            "server",
            "--roles",
            "api,scheduler,worker",
            "--allow-sh",
            "--poll-seconds",
            "1",
            "--listen",
            &listen,
        ];
        let child = self
            .s
            .command(&args, &env)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        self.workers.push(child);
        let t0 = Instant::now();
        while http(port, "GET", "/readyz", &[], None).map_or(0, |r| r.status) != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "not ready:\n{}",
                self.server_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        port
    }

    fn value(&self, sql: &str) -> String {
        current_thread().block_on(async {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let row = sqlx::query(&format!("SELECT ({sql})::text"))
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            row.get::<Option<String>, _>(0).unwrap_or_default()
        })
    }

    fn exec(&self, sql: &str) {
        current_thread().block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    fn number(&self, sql: &str) -> i64 {
        self.value(sql).parse().unwrap_or(0)
    }

    /// Wait for an attempt to end; returns its status.
    fn wait_attempt(&self, id: i64, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let status = self.value(&format!("SELECT status FROM attempts WHERE id = {id}"));
            if !status.is_empty() && status != "running" {
                return status;
            }
            if started.elapsed() > limit {
                panic!(
                    "attempt {id} still {status:?} after {limit:?}; tasks:\n{}\nservers:\n{}",
                    output_text(&self.sluice(&["tasks", &id.to_string()])),
                    self.server_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn server_logs(&self) -> String {
        (0..self.workers.len())
            .map(|i| {
                std::fs::read_to_string(self.s.path(&format!("server-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    fn signal(&self, index: usize, signal: &str) {
        let pid = self.workers[index].id().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// `proj/<name>.yaml`: `count` shell tasks in parallel, `${i}` from 0, and
/// an `out` parameter for where they write.
fn loop_workflow(f: &Fleet, name: &str, count: usize, command: &str) {
    let items: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    f.s.write(
        &format!("proj/{name}.yaml"),
        format!(
            "params: {{out: /nowhere}}\ntasks:\n  - name: each\n    for_each: {{i: [{}]}}\n    parallel: true\n    do:\n      - name: t\n        sh: {command}\n",
            items.join(", ")
        ),
    );
}

#[test]
fn three_workers_two_thousand_tasks_none_lost_none_run_twice_without_an_expired_lease() {
    let mut f = Fleet::new("many");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    loop_workflow(&f, "many", 2000, "echo x >> ${out}/${i}");
    f.ok(&["push", "proj", "--project", "p"]);
    // The first worker takes many tasks at once: killing it leaves leases behind.
    f.server("worker", &["--slots", "16"]);
    f.server("worker", &["--slots", "4"]);
    f.server("worker", &["--slots", "4"]);
    let out_param = format!("out={}", out.display());
    let started = f.ok(&["start", "p", "many", "-p", &out_param]);
    assert!(started.contains("started attempt 1"), "{started}");
    // Kill the first worker (SIGKILL: no goodbye) once work is under way.
    let t0 = Instant::now();
    while std::fs::read_dir(&out).unwrap().count() < 300 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no progress:\n{}",
            f.server_logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    f.workers[0].kill().unwrap();
    f.workers[0].wait().unwrap();
    assert_eq!(f.wait_attempt(1, Duration::from_secs(180)), "succeeded");
    let expired = ran_once_unless_a_lease_expired(&f, 1, &out, 2000);
    assert!(
        expired > 0,
        "the killed worker held no lease; the test proved nothing"
    );
    assert_eq!(
        f.number("SELECT count(*) FROM tasks WHERE attempt_id = 1 AND state <> 'succeeded'"),
        0
    );
}

/// Every one of the `count` shell tasks of `attempt` (a [`loop_workflow`]
/// writing a line to `out/<i>` each time it runs) ran, and ran more than
/// once only when a lease of it expired. Returns the leases that expired.
fn ran_once_unless_a_lease_expired(
    f: &Fleet,
    attempt: i64,
    out: &std::path::Path,
    count: usize,
) -> usize {
    let rows = f.value(&format!(
        "SELECT string_agg(name || ' ' || lease_expiries || ' ' || lease_count, ';') FROM tasks \
         WHERE attempt_id = {attempt} AND kind = 'sh'"
    ));
    let mut expired_total = 0;
    let mut seen = 0;
    for row in rows.split(';') {
        let parts: Vec<&str> = row.split(' ').collect();
        let i = parts[0]
            .split("[i=")
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap();
        let expiries: usize = parts[1].parse().unwrap();
        let leases: usize = parts[2].parse().unwrap();
        let runs = std::fs::read_to_string(out.join(i))
            .unwrap_or_else(|_| panic!("task {i} never ran"))
            .lines()
            .count();
        assert!(runs >= 1);
        assert!(
            runs <= 1 + expiries && leases == 1 + expiries,
            "task {i} ran {runs} times, leased {leases} times, with {expiries} expired leases"
        );
        expired_total += expiries;
        seen += 1;
    }
    assert_eq!(seen, count);
    expired_total
}

/// A PG → PG merge of 400,000 rows committing every 20,000: the transfer
/// the kill and stop tests interrupt.
fn merge_project(f: &Fleet, schema_name: &str) {
    schema(schema_name);
    pg(&format!(
        "CREATE TABLE {schema_name}.src (id int8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
         INSERT INTO {schema_name}.src SELECT g, md5(g::text), timestamptz '2024-01-01' + g * interval '1 ms'
           FROM generate_series(1, 400000) g;"
    ));
    f.s.write(
        "proj/jobs/merge.yaml",
        pg_to_pg(
            &format!("{{connection: app, table: {schema_name}.src, incremental: {{cursor: [updated_at]}}, batch_rows: 5000}}"),
            &format!("{{connection: app, table: {schema_name}.dst, mode: merge}}"),
        ) + "exec: {commit_every_rows: 20000}\n",
    );
    f.s.write(
        "proj/load.yaml",
        "tasks:\n  - name: merge\n    transfer: jobs/merge.yaml\n  - name: after\n    echo: done\n",
    );
    f.ok(&["push", "proj", "--project", "p"]);
}

fn dst_rows(schema_name: &str) -> i64 {
    let exists = crate::postgres::pg_value(&format!(
        "SELECT count(*) FROM pg_class WHERE relname = 'dst' AND relnamespace = '{schema_name}'::regnamespace"
    ));
    if exists != "1" {
        return 0;
    }
    crate::postgres::pg_value(&format!("SELECT count(*) FROM {schema_name}.dst"))
        .parse()
        .unwrap()
}

fn wait_rows(f: &Fleet, schema_name: &str, at_least: i64) -> i64 {
    let t0 = Instant::now();
    loop {
        let n = dst_rows(schema_name);
        if n >= at_least {
            return n;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no commit:\n{}",
            f.server_logs()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn worker_killed_mid_transfer_the_task_is_leased_again_and_resumes_from_its_checkpoint() {
    let mut f = Fleet::new("kill");
    merge_project(&f, "fleet_kill");
    f.server("worker", &[]);
    f.ok(&["start", "p", "load"]);
    let committed = wait_rows(&f, "fleet_kill", 60_000);
    f.workers[0].kill().unwrap();
    f.workers[0].wait().unwrap();
    assert!(committed < 400_000, "killed after everything committed");
    // Another worker picks the task up once the lease (2 s) has expired.
    f.server("worker", &[]);
    assert_eq!(f.wait_attempt(1, Duration::from_secs(120)), "succeeded");
    assert_eq!(
        f.value(
            "SELECT lease_count || '/' || lease_expiries FROM tasks WHERE name = '+load+merge'"
        ),
        "2/1"
    );
    assert_eq!(differences("fleet_kill.src", "fleet_kill.dst"), "0");
    // The second run started from the last checkpoint, not from the start.
    let again = f.number("SELECT rows FROM runs ORDER BY id DESC LIMIT 1");
    assert!(
        again >= 400_000 - committed && again <= 400_000 - committed + 25_000,
        "the resumed run moved {again} rows after {committed} were committed"
    );
    // The dead worker's run ended with its lease: failed, saying why.
    let first =
        f.value("SELECT status || ': ' || coalesce(error, '') FROM runs ORDER BY id LIMIT 1");
    assert!(
        first.starts_with("failed: the lease of worker") && first.contains("expired"),
        "{first}"
    );
}

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

#[test]
fn sigterm_checkpoints_releases_the_lease_and_exits_within_the_grace_period() {
    let mut f = Fleet::new("term");
    merge_project(&f, "fleet_term");
    let w = f.server("worker", &["--grace-seconds", "30"]);
    f.ok(&["start", "p", "load"]);
    wait_rows(&f, "fleet_term", 60_000);
    let t0 = Instant::now();
    f.signal(w, "-TERM");
    let status = f.workers[w].wait().unwrap();
    let took = t0.elapsed();
    assert!(status.success(), "exit {status}:\n{}", f.server_logs());
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let at_exit = dst_rows("fleet_term");
    assert!(
        at_exit < 400_000,
        "finished before the signal; the test proved nothing"
    );
    // Given back, not expired: ready at once, no retry counted.
    assert_eq!(
        f.value("SELECT state || '/' || lease_expiries || '/' || retries FROM tasks WHERE name = '+load+merge'"),
        "ready/0/0"
    );
    let logs = f.server_logs();
    assert!(logs.contains("shutting down"), "{logs}");
    f.server("worker", &[]);
    assert_eq!(f.wait_attempt(1, Duration::from_secs(120)), "succeeded");
    assert_eq!(differences("fleet_term.src", "fleet_term.dst"), "0");
    let again = f.number("SELECT rows FROM runs ORDER BY id DESC LIMIT 1");
    assert!(
        again <= 400_000 - at_exit + 5_000,
        "the second worker moved {again} rows after {at_exit} were checkpointed"
    );
}

#[test]
fn two_schedulers_fire_each_scheduled_time_exactly_once() {
    let mut f = Fleet::new("sched");
    f.s.write(
        "proj/tick.yaml",
        "schedule: {minutes_interval: 1}\ntasks:\n  - {name: t, echo: '${session_time}'}\n",
    );
    f.ok(&["push", "proj", "--project", "p"]);
    // Forty minutes behind: the schedulers catch up, one time after another.
    f.exec("UPDATE schedules SET next_run_time = next_run_time - 40 * 60000");
    let first = f.number("SELECT next_run_time FROM schedules");
    f.server("scheduler", &["--scheduler-tick-seconds", "0.02"]);
    f.server("scheduler", &["--scheduler-tick-seconds", "0.02"]);
    let t0 = Instant::now();
    while f.number("SELECT count(*) FROM sessions") < 40 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not caught up:\n{}",
            f.server_logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let sessions = f.number("SELECT count(*) FROM sessions");
    assert_eq!(
        sessions,
        f.number("SELECT count(DISTINCT session_time) FROM sessions")
    );
    assert_eq!(sessions, f.number("SELECT count(*) FROM attempts"));
    // Every minute from the first due time on, each once, none skipped.
    assert_eq!(f.number("SELECT min(session_time) FROM sessions"), first);
    assert_eq!(
        f.number("SELECT (max(session_time) - min(session_time)) / 60000 + 1 FROM sessions"),
        sessions
    );
    // One of the two led.
    let logs = f.server_logs();
    assert_eq!(logs.matches("scheduler: leading").count(), 1, "{logs}");
    let list = f.ok(&["schedule", "list"]);
    assert!(
        list.contains("p/tick") && list.contains("minutes_interval"),
        "{list}"
    );
}

/// The most tasks of these attempts that ran at one time, from the
/// recorded start and end of each.
fn most_at_once(f: &Fleet, attempts: &str) -> usize {
    let rows = f.value(&format!(
        "SELECT string_agg(started_at || ' ' || finished_at, ';') FROM tasks \
         WHERE attempt_id IN ({attempts}) AND kind = 'sh'"
    ));
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for row in rows.split(';') {
        let (start, end) = row.split_once(' ').unwrap();
        edges.push((start.parse().unwrap(), 1));
        edges.push((end.parse().unwrap(), -1));
    }
    // An end and a start at the same millisecond do not overlap.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn max_running_holds_across_sessions_and_workers_and_the_fleet_cap_over_everything() {
    let mut f = Fleet::new("limits");
    f.s.write(
        "proj/limited.yaml",
        "max_running: 2\ntasks:\n  - name: each\n    for_each: {i: [0, 1, 2, 3, 4, 5]}\n    parallel: true\n    do:\n      - {name: t, sh: sleep 0.3}\n",
    );
    loop_workflow(&f, "free", 8, "sleep 0.3");
    f.ok(&["push", "proj", "--project", "p"]);
    f.server("worker", &["--slots", "4"]);
    f.server("worker", &["--slots", "4"]);
    // Two sessions of the limited workflow and one unlimited, all at once.
    f.ok(&["start", "p", "limited", "--session", "2026-01-01"]);
    f.ok(&["start", "p", "limited", "--session", "2026-01-02"]);
    f.ok(&["start", "p", "free"]);
    for attempt in 1..=3 {
        assert_eq!(
            f.wait_attempt(attempt, Duration::from_secs(60)),
            "succeeded"
        );
    }
    assert_eq!(
        most_at_once(&f, "1, 2"),
        2,
        "max_running: 2 across two sessions"
    );
    assert!(
        most_at_once(&f, "3") > 2,
        "the unlimited workflow was held back by the other's limit"
    );

    // A fleet capped at 3 running tasks, whatever the workers' slots.
    for w in &mut f.workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    f.workers.clear();
    f.server("worker", &["--slots", "4", "--max-running", "3"]);
    f.server("worker", &["--slots", "4", "--max-running", "3"]);
    f.ok(&["start", "p", "free", "--session", "2026-01-03"]);
    assert_eq!(f.wait_attempt(4, Duration::from_secs(60)), "succeeded");
    assert_eq!(most_at_once(&f, "4"), 3, "--max-running 3");
}

#[test]
fn for_each_row_loops_over_a_query_and_a_resumed_attempt_keeps_the_rounds_that_succeeded() {
    let mut f = Fleet::new("rows");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    pg("DROP TABLE IF EXISTS fleet_rows_regions; \
        CREATE TABLE fleet_rows_regions (region text, n int, enabled bool); \
        INSERT INTO fleet_rows_regions VALUES ('jp', 1, true), ('us', 2, true), \
        ('eu', 3, true), ('xx', 4, false)");
    // A password the trust-auth server ignores: it must not leak anywhere.
    let base = pg_url();
    let url = base.replacen("postgres@", "postgres:hunter2@", 1);
    f.ok(&["secrets", "set", "p", "warehouse", "--value", &url]);
    f.s.write(
        "proj/loop.yaml",
        "params: {out: /nowhere}\ntasks:\n  - name: regions\n    for_each_row:\n      url: ${secret:warehouse}\n      query: SELECT region, n FROM fleet_rows_regions WHERE enabled ORDER BY region\n    parallel: true\n    do:\n      - {name: work, sh: 'test ${region} != us || (sleep 1 && test -f ${out}/fixed)'}\n      - {name: note, sh: 'echo ${n} >> ${out}/${region}'}\n  - {name: done, sh: 'echo done >> ${out}/done'}\n",
    );
    f.ok(&["push", "proj", "--project", "p"]);
    f.server("worker", &[]);
    f.server("worker", &[]);
    let out_param = format!("out={}", out.display());
    f.ok(&["start", "p", "loop", "-p", &out_param]);
    assert_eq!(f.wait_attempt(1, Duration::from_secs(60)), "failed");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    assert_eq!(
        (read("jp"), read("eu"), read("us")),
        ("1\n".into(), "3\n".into(), "".into())
    );
    assert!(!out.join("xx").exists() && !out.join("done").exists());
    assert_eq!(
        f.value("SELECT summary FROM tasks WHERE attempt_id = 1 AND name = '+loop+regions^rows'"),
        r#"{"rounds":3}"#
    );
    // Resumed: the query runs again, the rounds that succeeded are kept
    // (not run twice), the failed one runs, and then what follows the loop.
    std::fs::write(out.join("fixed"), "").unwrap();
    f.ok(&["retry", "1", "--resume"]);
    assert_eq!(f.wait_attempt(2, Duration::from_secs(60)), "succeeded");
    assert_eq!(
        (read("jp"), read("eu"), read("us"), read("done")),
        ("1\n".into(), "3\n".into(), "2\n".into(), "done\n".into())
    );
    assert_eq!(
        f.number(
            "SELECT count(*) FROM tasks WHERE attempt_id = 2 AND kind = 'sh' AND lease_count > 0"
        ),
        3,
        "only us (work, note) and done ran in the resumed attempt"
    );
    // The URL's password is in no task, log or error.
    let everything = f.value(
        "SELECT string_agg(config || params || coalesce(error, '') || coalesce(summary, ''), ' ') FROM tasks",
    );
    assert!(!everything.contains("hunter2"), "{everything}");
    let logs = f.ok(&["logs", "1", "--task", "regions^rows"]);
    assert!(
        logs.contains("returned 3 rows") && !logs.contains("hunter2"),
        "{logs}"
    );
}

/// A PostgreSQL cluster of the test's own, on a free port, so that it can
/// be restarted without disturbing the tests that share the machine's.
struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
    /// PostgreSQL's server binaries (initdb, pg_ctl).
    bin: std::path::PathBuf,
}

impl PrivateCluster {
    /// `initdb` and start one (as the `postgres` user when the tests run as
    /// root, which initdb refuses); `None` when PostgreSQL's server
    /// binaries are not installed here.
    fn start() -> Option<PrivateCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").is_file())
            .max()?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivateCluster { dir, port, bin };
        if cluster.as_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = cluster.data();
        cluster.pg_tool(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        cluster.pg_ctl("start");
        Some(cluster)
    }

    fn as_root(&self) -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Run one of PostgreSQL's tools, as the user that owns the cluster.
    fn tool(&self, tool: &str) -> std::process::Command {
        let path = self.bin.join(tool);
        if self.as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    fn pg_tool(&self, tool: &str, args: &[&str]) {
        let out = self.tool(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            output_text(&out)
        );
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options];
        if action == "restart" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.pg_tool("pg_ctl", &args);
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .tool("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

#[test]
fn workers_carry_on_after_their_postgresql_restarts() {
    let Some(cluster) = PrivateCluster::start() else {
        eprintln!("no PostgreSQL server binaries here: skipped");
        return;
    };
    current_thread().block_on(async {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
            .await
            .unwrap();
        sqlx::raw_sql("CREATE DATABASE fleet")
            .execute(&mut admin)
            .await
            .unwrap();
    });
    let mut f = Fleet::on(cluster.url("fleet"));
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    loop_workflow(&f, "slow", 300, "sleep 0.05; echo x >> ${out}/${i}");
    f.ok(&["push", "proj", "--project", "p"]);
    f.server("worker", &[]);
    f.server("worker", &[]);
    let out_param = format!("out={}", out.display());
    f.ok(&["start", "p", "slow", "-p", &out_param]);
    let t0 = Instant::now();
    while std::fs::read_dir(&out).unwrap().count() < 60 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "stuck:\n{}\n{}",
            f.value("SELECT string_agg(name || ': ' || error, E'\\n') FROM tasks WHERE error IS NOT NULL"),
            f.server_logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A real restart: the server goes away, refuses connections, comes back.
    cluster.pg_ctl("restart");
    let at_restart = std::fs::read_dir(&out).unwrap().count();
    assert!(at_restart < 300, "the work ended before the restart");
    assert_eq!(f.wait_attempt(1, Duration::from_secs(120)), "succeeded");
    ran_once_unless_a_lease_expired(&f, 1, &out, 300);
    // Both workers are still there and still working afterwards.
    f.ok(&[
        "start",
        "p",
        "slow",
        "--session",
        "2026-01-01",
        "-p",
        &out_param,
    ]);
    assert_eq!(f.wait_attempt(2, Duration::from_secs(60)), "succeeded");
    assert!(
        f.workers
            .iter_mut()
            .all(|w| w.try_wait().unwrap().is_none()),
        "a worker exited:\n{}",
        f.server_logs()
    );
}

#[test]
fn workers_ride_out_dropped_database_connections() {
    let mut f = Fleet::new("drop");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    loop_workflow(&f, "slow", 300, "sleep 0.05; echo x >> ${out}/${i}");
    f.ok(&["push", "proj", "--project", "p"]);
    f.server("worker", &[]);
    f.server("worker", &[]);
    let out_param = format!("out={}", out.display());
    f.ok(&["start", "p", "slow", "-p", &out_param]);
    // Cut every connection to the store three times while they work, as a
    // database restart does.
    for round in 0..3 {
        let t0 = Instant::now();
        while std::fs::read_dir(&out).unwrap().count() < 50 * (round + 1) {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "stuck:\n{}",
                f.server_logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        pg("SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
            WHERE datname = 'sluice_fleet_drop' AND pid <> pg_backend_pid()");
    }
    assert_eq!(f.wait_attempt(1, Duration::from_secs(120)), "succeeded");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 300);
}

#[test]
fn push_start_retry_resume_kill_and_masked_secrets_through_the_cli() {
    let mut f = Fleet::new("cli");
    let out = f.s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    f.ok(&[
        "secrets",
        "set",
        "p",
        "api_token",
        "--value",
        "s3cr3t-v4lue",
    ]);
    let listed = f.ok(&["secrets", "list", "p"]);
    assert!(
        listed.contains("api_token") && !listed.contains("s3cr3t"),
        "{listed}"
    );
    f.s.write(
        "proj/flow.yaml",
        "params: {out: /nowhere}\ntasks:\n  - name: one\n    sh: {command: 'echo token=$TOKEN; echo one >> ${out}/one', env: {TOKEN: '${secret:api_token}'}}\n  - name: two\n    sh: test -f ${out}/fixed\n  - name: three\n    sh: echo three >> ${out}/three\n",
    );
    f.s.write("proj/hang.yaml", "tasks:\n  - {name: wait, sh: sleep 60}\n");
    f.ok(&["push", "proj", "--project", "p", "--revision", "v1"]);
    f.server("worker", &[]);
    let out_param = format!("out={}", out.display());
    f.ok(&["start", "p", "flow", "-p", &out_param]);
    assert_eq!(f.wait_attempt(1, Duration::from_secs(60)), "failed");
    let logs = f.ok(&["logs", "1", "--task", "one"]);
    assert!(
        logs.contains("token=***") && !logs.contains("s3cr3t"),
        "{logs}"
    );
    // Fix the cause, resume: `one` is not run again, `two` and `three` are.
    std::fs::write(out.join("fixed"), "").unwrap();
    let retried = f.ok(&["retry", "1", "--resume"]);
    assert!(retried.contains("attempt 2"), "{retried}");
    assert_eq!(f.wait_attempt(2, Duration::from_secs(60)), "succeeded");
    assert_eq!(std::fs::read_to_string(out.join("one")).unwrap(), "one\n");
    assert_eq!(
        std::fs::read_to_string(out.join("three")).unwrap(),
        "three\n"
    );
    // From scratch, everything runs again.
    f.ok(&["retry", "2"]);
    assert_eq!(f.wait_attempt(3, Duration::from_secs(60)), "succeeded");
    assert_eq!(
        std::fs::read_to_string(out.join("one")).unwrap(),
        "one\none\n"
    );
    let attempts = f.ok(&["attempts", "--project", "p"]);
    assert_eq!(attempts.matches("p/flow").count(), 3, "{attempts}");
    // Kill: the running task stops at the next heartbeat.
    f.ok(&["start", "p", "hang"]);
    let t0 = Instant::now();
    while f.value("SELECT state FROM tasks WHERE attempt_id = 4 AND kind = 'sh'") != "running" {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    f.ok(&["kill", "4"]);
    assert_eq!(f.wait_attempt(4, Duration::from_secs(20)), "killed");
    assert!(t0.elapsed() < Duration::from_secs(30));
    // A second push with the same revision name is refused, nothing changed.
    let again = f.sluice(&["push", "proj", "--project", "p", "--revision", "v1"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(output_text(&again).contains("already has a revision v1"));
}

#[test]
fn schedule_backfill_skip_disable_and_enable() {
    let f = Fleet::new("backfill");
    f.s.write(
        "proj/tick.yaml",
        "timezone: Asia/Tokyo\nschedule: {daily: '07:00'}\ntasks:\n  - {name: t, echo: '${session_date}'}\n",
    );
    f.ok(&["push", "proj", "--project", "p"]);
    // Three days of missed sessions, at 07:00 Tokyo time each.
    let out = f.ok(&[
        "schedule",
        "backfill",
        "p",
        "tick",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-04",
    ]);
    assert!(
        out.contains("3 sessions started, 0 had run already"),
        "{out}"
    );
    assert!(out.contains("2026-01-03T07:00:00+09:00"), "{out}");
    assert_eq!(
        f.value("SELECT string_agg(to_char(to_timestamp(session_time / 1000) AT TIME ZONE 'Asia/Tokyo', 'MM-DD HH24:MI'), ',' ORDER BY session_time) FROM sessions"),
        "01-01 07:00,01-02 07:00,01-03 07:00"
    );
    // Again: nothing new, a time fires once.
    let out = f.ok(&[
        "schedule",
        "backfill",
        "p",
        "tick",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-04",
    ]);
    assert!(
        out.contains("0 sessions started, 3 had run already"),
        "{out}"
    );
    f.ok(&["schedule", "disable", "p", "tick"]);
    assert!(
        f.ok(&["schedule", "list"])
            .lines()
            .any(|l| l.starts_with("no "))
    );
    assert_eq!(f.number("SELECT enabled FROM schedules"), 0);
    f.ok(&["schedule", "enable", "p", "tick"]);
    assert_eq!(f.number("SELECT enabled FROM schedules"), 1);
    let out = f.ok(&["schedule", "skip", "p", "tick", "--until", "2099-01-01"]);
    assert!(out.contains("next run 2099-01-01T07:00:00+09:00"), "{out}");
    let bad = f.sluice(&["schedule", "disable", "p", "nothing"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(output_text(&bad).contains("no schedule of p/nothing"));
}

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
