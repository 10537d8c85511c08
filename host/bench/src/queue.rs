//! `sluice-bench queue <url> <tasks> <workers>`: lease + complete throughput
//! of empty tasks through the real worker loop, and the dispatch latency
//! (ready → leased), beside a bare `FOR UPDATE SKIP LOCKED` loop on the
//! same database: what PostgreSQL itself allows with the same batching.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sluice_pipeline::PluginDirs;
use sluice_runtime::{Runtime, RuntimeConfig};
use sluice_server::{Executor, Worker, WorkerConfig};
use sluice_store::{NewAttempt, NewTask, Plan, RetryPolicy, Store, TaskStart};
use sqlx::{Connection, Row};
use tokio::sync::watch;

/// `tasks` empty tasks under one group: all ready at once (`chain`: each
/// waits for the one before, so every dispatch meets an idle worker).
fn plan(tasks: usize, chain: bool) -> Plan {
    let mut plan = Plan::default();
    plan.tasks.push(NewTask {
        parent: None,
        name: "+bench".into(),
        kind: "group".into(),
        config: "{}".into(),
        params: "{}".into(),
        upstream: if chain {
            vec![tasks]
        } else {
            (1..=tasks).collect()
        },
        retry: RetryPolicy::default(),
        start: TaskStart::Active,
        on_error_of: None,
        error_root: None,
    });
    for i in 0..tasks {
        plan.tasks.push(NewTask {
            parent: Some(0),
            name: format!("+bench+t{i}"),
            kind: "echo".into(),
            config: r#"{"message":""}"#.into(),
            params: "{}".into(),
            upstream: if chain && i > 0 { vec![i] } else { Vec::new() },
            retry: RetryPolicy::default(),
            start: TaskStart::Active,
            on_error_of: None,
            error_root: None,
        });
    }
    plan
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn sluice_run(
    url: &str,
    tasks: usize,
    workers: usize,
    chain: bool,
) -> Result<serde_json::Value> {
    let store = Store::open(url).await?;
    let project = store.ensure_project("bench").await?;
    let plan = plan(tasks, chain);
    let t0 = Instant::now();
    let attempt = store
        .start_attempt(&NewAttempt {
            project_id: project,
            workflow: "bench",
            session_time: sluice_server::now_ms(),
            revision_id: None,
            params: "{}",
            plan: &plan,
            only_new_session: false,
            resume_from: None,
            max_running: None,
        })
        .await?
        .context("attempt not started")?;
    let enqueue = t0.elapsed();
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let executor = Arc::new(Executor::new(
        store.clone(),
        runtime,
        PluginDirs::default(),
        false,
    ));
    let (_stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let worker = Worker::new(
            store.clone(),
            executor.clone(),
            WorkerConfig {
                id: format!("bench-{w}"),
                slots: 64,
                lease_ttl: Duration::from_secs(30),
                poll: Duration::from_millis(200),
                grace: Duration::from_secs(5),
                max_lease_expiries: 3,
                only_attempt: Some(attempt.id),
                local_root: Some(std::env::temp_dir()),
                work_dir: std::env::temp_dir(),
                log_dir: None,
                log_sink: None,
                secret_key: None,
                roles: "bench".into(),
            },
        );
        let stop = stop.clone();
        handles.push(tokio::spawn(async move { worker.run(stop).await }));
    }
    // Every worker ends when the attempt does.
    for h in handles {
        h.await??;
    }
    let elapsed = started.elapsed();
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let rows = sqlx::query(
        "SELECT leased_at - ready_at FROM tasks WHERE attempt_id = $1 AND kind = 'echo' ORDER BY 1",
    )
    .bind(attempt.id)
    .fetch_all(&mut conn)
    .await?;
    let latencies: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
    let status: String = sqlx::query("SELECT status FROM attempts WHERE id = $1")
        .bind(attempt.id)
        .fetch_one(&mut conn)
        .await?
        .get(0);
    anyhow::ensure!(status == "succeeded", "attempt ended {status}");
    anyhow::ensure!(
        latencies.len() == tasks,
        "{} of {tasks} tasks ran",
        latencies.len()
    );
    Ok(serde_json::json!({
        "tasks": tasks,
        "workers": workers,
        "enqueue_s": enqueue.as_secs_f64(),
        "seconds": elapsed.as_secs_f64(),
        "tasks_per_s": tasks as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
    }))
}

/// The floor: lease 64 rows with SKIP LOCKED, mark them done, repeat.
async fn raw_run(url: &str, tasks: usize, workers: usize) -> Result<serde_json::Value> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (id bigserial PRIMARY KEY, \
         state text NOT NULL DEFAULT 'ready', owner text); \
         CREATE INDEX bench_raw_ready ON bench_raw (id) WHERE state = 'ready';",
    )
    .execute(&mut conn)
    .await?;
    sqlx::query("INSERT INTO bench_raw (state) SELECT 'ready' FROM generate_series(1, $1)")
        .bind(tasks as i64)
        .execute(&mut conn)
        .await?;
    // Fresh statistics, or the planner sorts every ready row on each lease.
    sqlx::raw_sql("ANALYZE bench_raw")
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let url = url.to_string();
        handles.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            loop {
                let ids: Vec<i64> = sqlx::query(
                    "UPDATE bench_raw SET state = 'running', owner = $1 WHERE id IN \
                     (SELECT id FROM bench_raw WHERE state = 'ready' ORDER BY id LIMIT 64 \
                     FOR UPDATE SKIP LOCKED) RETURNING id",
                )
                .bind(format!("raw-{w}"))
                .fetch_all(&mut conn)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
                if ids.is_empty() {
                    return Ok::<_, anyhow::Error>(());
                }
                sqlx::query("UPDATE bench_raw SET state = 'done' WHERE id = ANY($1)")
                    .bind(&ids)
                    .execute(&mut conn)
                    .await?;
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    let elapsed = started.elapsed();
    Ok(serde_json::json!({
        "tasks": tasks,
        "workers": workers,
        "seconds": elapsed.as_secs_f64(),
        "tasks_per_s": tasks as f64 / elapsed.as_secs_f64(),
    }))
}

/// Run both and print one JSON object.
pub fn queue(url: &str, tasks: usize, workers: usize) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let raw = rt.block_on(raw_run(url, tasks, workers))?;
    let sluice = rt.block_on(sluice_run(url, tasks, workers, false))?;
    // Dispatch latency on its own: a chain, each task ready when the last ends.
    let chain = rt.block_on(sluice_run(url, 500, workers, true))?;
    println!(
        "{}",
        serde_json::json!({"raw": raw, "sluice": sluice, "chain": chain})
    );
    Ok(())
}
