//! `api <postgres-url> <tasks>`: the REST API's latency with a big history
//! beside the same requests on a nearly empty store.
//!
//! Two databases are filled by SQL (`generate_series`, so a million tasks
//! take seconds, not an hour of workflow runs): one with `tasks` historic
//! tasks (ten per attempt, one attempt per session), one with just enough
//! history (102 attempts) that every page is as full as on the big one, so
//! the ratio is about the history's size, not about shorter answers. Each is served by the real API in this process over loopback;
//! a load generator of four keep-alive clients asks for the newest page of
//! sessions, a deep page of attempts (by cursor), an attempt's tasks and a
//! page of a task's log. It prints p50/p99 per request and the ratio of
//! big to small.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sluice_api::{ApiConfig, ApiState, Role, create_token};
use sluice_store::Store;
use sqlx::Connection;

/// Keep-alive clients asking at once.
const CLIENTS: usize = 4;
/// Requests per client and request kind.
const PER_CLIENT: usize = 250;
/// Tasks per attempt in the seeded history.
const TASKS_PER_ATTEMPT: i64 = 10;
/// The baseline's history: 102 attempts, so the newest page of sessions
/// and the deep page of attempts (from the middle) hold 50 items each.
const BASELINE_TASKS: i64 = 102 * TASKS_PER_ATTEMPT;

/// Run the benchmark; `base` is a PostgreSQL URL whose database part is
/// replaced by the two benchmark databases.
pub fn api(base: &str, tasks: i64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let log = std::env::temp_dir().join("sluice-bench-api.log");
        let line = "2026-12-02T00:00:00Z INFO a line of a task's log, as a worker writes it\n";
        std::fs::write(&log, line.repeat(4096))?;
        let small = measure(base, "sluice_bench_api_small", BASELINE_TASKS, &log).await?;
        let big = measure(base, "sluice_bench_api_big", tasks, &log).await?;
        println!(
            "\nREST API latency, {CLIENTS} clients x {PER_CLIENT} requests each, loopback, \
             PostgreSQL; ratio = p99 with {tasks} historic tasks / p99 with {BASELINE_TASKS} \
             (the same full pages)"
        );
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>10} {:>7}",
            "request", "small p50", "small p99", "big p50", "big p99", "ratio"
        );
        let mut worst = 0.0f64;
        let mut slowest = 0.0f64;
        for ((name, s), (_, b)) in small.iter().zip(&big) {
            let ratio = b.p99 / s.p99.max(0.001);
            worst = worst.max(ratio);
            slowest = slowest.max(b.p99);
            println!(
                "{name:<34} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms {ratio:>7.2}",
                s.p50, s.p99, b.p50, b.p99
            );
        }
        println!(
            "targets: p99 under 50 ms ({}), ratio under 2 ({})",
            if slowest < 50.0 { "met" } else { "MISSED" },
            if worst < 2.0 { "met" } else { "MISSED" }
        );
        Ok(())
    })
}

struct Figures {
    p50: f64,
    p99: f64,
}

async fn measure(base: &str, db: &str, tasks: i64, log: &Path) -> Result<Vec<(String, Figures)>> {
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .context("the benchmark's PostgreSQL")?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    let url = format!(
        "{}/{db}",
        &base[..base.rfind('/').context("a URL with a database")?]
    );
    let store = Store::open(&url).await?;
    let t0 = Instant::now();
    let (attempt, task) = seed(&store, &url, tasks, log).await?;
    eprintln!(
        "{db}: {tasks} tasks seeded in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let state = ApiState::new(store, ApiConfig::default(), None);
    let token = create_token(&state, "bench", Role::Viewer, None)
        .await?
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(sluice_api::serve(listener, state, shutdown));
    let base_url = format!("http://127.0.0.1:{port}");
    // A deep page: the cursor of an attempt half-way through the history.
    let deep = (attempt / 2).max(2);
    let requests = [
        (
            "GET /api/sessions (newest 50)",
            "/api/sessions?limit=50".to_string(),
        ),
        (
            "GET /api/attempts (deep page)",
            format!("/api/attempts?limit=50&cursor={deep}"),
        ),
        (
            "GET /api/attempts/{id}/tasks",
            format!("/api/attempts/{attempt}/tasks"),
        ),
        (
            "GET /api/tasks/{id}/log (a page)",
            format!("/api/tasks/{task}/log"),
        ),
    ];
    let mut out = Vec::new();
    for (name, path) in requests {
        out.push((name.to_string(), load(&base_url, &path, &token).await?));
    }
    let _ = stop.send(true);
    let _ = server.await;
    Ok(out)
}

/// Fill the store: `tasks` tasks, ten per attempt, one attempt per
/// session, each task with a log. Returns the newest attempt and one of
/// its tasks.
async fn seed(store: &Store, url: &str, tasks: i64, log: &Path) -> Result<(i64, i64)> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let sessions = (tasks / TASKS_PER_ATTEMPT).max(1);
    let log = log.display().to_string().replace('\'', "''");
    for sql in [
        "INSERT INTO projects (name, created_at) VALUES ('bench', 0)".to_string(),
        "INSERT INTO revisions (project_id, name, files, created_at) VALUES (1, 'v1', '{}', 0)"
            .to_string(),
        format!(
            "INSERT INTO sessions (project_id, workflow, session_time, revision_id, created_at) \
             SELECT 1, 'flow' || (g % 20), g::bigint * 60000, 1, g::bigint * 60000 \
             FROM generate_series(1, {sessions}) g"
        ),
        "INSERT INTO attempts (session_id, status, params, created_at, finished_at) \
         SELECT id, CASE WHEN id % 17 = 0 THEN 'failed' ELSE 'succeeded' END, '{}', \
                created_at, created_at + 42000 FROM sessions ORDER BY id"
            .to_string(),
        format!(
            "INSERT INTO tasks (attempt_id, name, kind, config, params, state, ready_at, \
                                started_at, finished_at, lease_count, summary) \
             SELECT a.id, '+flow+step' || k, 'transfer', '{{}}', '{{}}', 'succeeded', \
                    a.created_at, a.created_at + k * 1000, a.created_at + k * 1000 + 900, 1, \
                    '{{\"rows\": 100000, \"bytes_in\": 6400000, \"rows_per_second\": 111111}}' \
             FROM attempts a, generate_series(1, {TASKS_PER_ATTEMPT}) k ORDER BY a.id, k"
        ),
        format!(
            "INSERT INTO task_logs (task_id, lease, location, worker, created_at) \
             SELECT id, 1, '{log}', 'bench', 0 FROM tasks"
        ),
        "ANALYZE".to_string(),
    ] {
        sqlx::raw_sql(&sql).execute(&mut conn).await?;
    }
    let attempt: i64 = sqlx::query_scalar("SELECT max(id) FROM attempts")
        .fetch_one(&mut conn)
        .await?;
    let task = store.tasks(attempt).await?.first().map(|t| t.id);
    Ok((attempt, task.context("the seeded attempt has tasks")?))
}

async fn load(base: &str, path: &str, token: &str) -> Result<Figures> {
    let url = format!("{base}{path}");
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        let token = token.to_string();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut took = Vec::with_capacity(PER_CLIENT);
            for i in 0..PER_CLIENT + 20 {
                let t0 = Instant::now();
                let response = http.get(&url).bearer_auth(&token).send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                if !status.is_success() {
                    bail!("{url}: {status}: {}", String::from_utf8_lossy(&body));
                }
                // The first requests warm the connection and the caches.
                if i >= 20 {
                    took.push(t0.elapsed());
                }
            }
            Ok::<_, anyhow::Error>(took)
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for client in clients {
        all.extend(client.await??);
    }
    all.sort();
    let at = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    Ok(Figures {
        p50: at(0.50),
        p99: at(0.99),
    })
}
