//! A fleet on a real PostgreSQL: `sluice server` processes sharing one
//! database, killed, stopped and cut off while they work. Each test has its
//! own database (`sluice_fleet_<name>`), created here.

use std::time::{Duration, Instant};

use crate::postgres::{differences, pg, pg_to_pg, pg_url, schema};

mod api;
mod contained;
pub(crate) mod harness;

use harness::{Fleet, current_thread, output_text};

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
