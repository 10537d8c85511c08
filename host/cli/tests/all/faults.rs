//! Fault injection over the real data paths, in seeded loops: `kill -9` of
//! `sluice run` at random points, and PostgreSQL backends terminated at
//! random points, during PostgreSQL → PostgreSQL merge, PostgreSQL →
//! Parquet on S3 and on GCS, and CSV → PostgreSQL replace. After every fault a rerun
//! must converge: the target equals the source, no key twice, nothing
//! staged left behind (temporary tables, open multipart uploads, staged
//! objects, journal records).
//!
//! `SLUICE_FAULT_SEED` replays a run (the seed is printed); each loop runs
//! `SLUICE_FAULT_ITERATIONS` times (default 20), bounded in time.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::postgres::pg_url;
use crate::s3::{Bucket, S3, aws_env, endpoint, refs};
use crate::support::*;

/// Rows in each scenario's source.
const ROWS: i64 = 100_000;

/// A small seeded generator (xorshift64*): the same seed, the same faults.
struct Rng(u64);

impl Rng {
    fn new(scenario: u64) -> Rng {
        let seed = std::env::var("SLUICE_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_2026_1206);
        eprintln!("fault injection seed {seed} (SLUICE_FAULT_SEED), scenario {scenario}");
        Rng((seed ^ scenario.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn iterations() -> usize {
    std::env::var("SLUICE_FAULT_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// The database the fault loops own alone: terminating its backends never
/// touches another test's connections.
fn faults_db(name: &str) -> String {
    let base = pg_url();
    let db = format!("sluice_faults_{name}");
    crate::postgres::pg(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    crate::postgres::pg(&format!("CREATE DATABASE {db}"));
    format!("{}/{db}", &base[..base.rfind('/').unwrap()])
}

fn sql(url: &str, statement: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        if !statement
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("SELECT")
        {
            sqlx::raw_sql(statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
            return String::new();
        }
        let row = sqlx::query(&format!("SELECT ({statement})::text"))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        row.get::<Option<String>, _>(0).unwrap_or_default()
    })
}

/// The source table: `ROWS` rows with a cursor column.
fn source_table(url: &str) {
    sql(
        url,
        &format!(
            "CREATE TABLE src (id int8 PRIMARY KEY, v text NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO src SELECT g, md5(g::text), timestamptz '2024-01-01' + g * interval '1 ms'
               FROM generate_series(1, {ROWS}) g;"
        ),
    );
}

/// What can interrupt a run.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `kill -9` of the process.
    Kill,
    /// `pg_terminate_backend` of every Sluice connection to the database.
    Terminate,
}

/// Start `sluice run job`, and after `delay` inflict `fault` (if the run
/// is still going). Returns whether the fault hit a running run.
fn run_with_fault(
    s: &Scratch,
    job: &str,
    env: &[(&str, &str)],
    fault: Fault,
    delay: Duration,
    db: &str,
) -> bool {
    let mut child = s
        .command(&["run", job], env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    match fault {
        Fault::Kill => {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        Fault::Terminate => {
            sql(
                &pg_url(),
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = '{}' AND application_name = 'sluice'",
                    db.rsplit('/').next().unwrap()
                ),
            );
            // The run may ride it out (retries) or fail; either way it ends.
            let waited = Instant::now();
            while child.try_wait().unwrap().is_none() {
                assert!(waited.elapsed() < Duration::from_secs(120), "the run hung");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    true
}

/// Run until it succeeds: a terminated backend may need a second try.
fn converge(s: &Scratch, job: &str, env: &[(&str, &str)]) {
    for attempt in 0..3 {
        let out = s.sluice_env(&["run", job, "--json"], env);
        if out.status.success() {
            return;
        }
        assert!(
            attempt < 2,
            "no convergence:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// How long an uninterrupted run takes here: the range faults land in.
/// The faster of two runs: the first may compile the plugins.
fn calibrate(s: &Scratch, job: &str, env: &[(&str, &str)], reset: &dyn Fn()) -> Duration {
    let mut took = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        converge(s, job, env);
        took = took.min(started.elapsed());
        reset();
    }
    took
}

/// Objects the state store still records as being written.
fn journal_left(s: &Scratch) -> i64 {
    let path = s.path(".sluice/state.db");
    if !path.exists() {
        return 0;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("SELECT count(*) FROM staged_objects")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get::<i64, _>(0)
    })
}

/// What one scenario's loop saw.
#[derive(Debug, Default)]
struct Tally {
    iterations: usize,
    faults: usize,
    converged: usize,
}

/// One data path, ready to be run and interrupted.
struct Path<'a> {
    name: &'a str,
    s: &'a Scratch,
    env: &'a [(&'a str, &'a str)],
    /// The database whose backends a `Terminate` fault ends.
    db: &'a str,
    /// Back to an empty target and no saved state.
    reset: &'a dyn Fn(),
    /// The target equals the source, nothing left behind.
    check: &'a dyn Fn(usize),
}

/// The loop: a fresh target, a fault at a random point, a rerun, checks.
fn fault_loop(path: &Path, scenario: u64, fault: Fault) {
    let Path {
        name,
        s,
        env,
        db,
        reset,
        check,
    } = *path;
    let mut rng = Rng::new(scenario);
    let span = calibrate(s, "j.yaml", env, reset);
    let budget = Instant::now();
    let mut tally = Tally::default();
    for i in 0..iterations() {
        assert!(
            budget.elapsed() < Duration::from_secs(300),
            "{name}: the loop ran out of time after {i} iterations"
        );
        // Faults land anywhere in the run. One that comes after the run
        // ended (this machine was faster than when it was timed) is tried
        // again sooner, after the run it missed is checked too.
        let mut delay = span.mul_f64(0.02 + 0.98 * rng.unit());
        for _ in 0..5 {
            let landed = run_with_fault(s, "j.yaml", env, fault, delay, db);
            eprintln!(
                "{name}: iteration {i}: {fault:?} after {delay:?} of ~{span:?}: landed {landed}"
            );
            if landed {
                tally.faults += 1;
                break;
            }
            check(i);
            reset();
            delay /= 2;
        }
        converge(s, "j.yaml", env);
        check(i);
        tally.converged += 1;
        tally.iterations += 1;
        reset();
    }
    eprintln!(
        "{name} ({fault:?}): {} iterations, {} faults landed mid-run, {} converged",
        tally.iterations, tally.faults, tally.converged
    );
    assert!(
        tally.faults * 4 >= tally.iterations * 3,
        "{name}: too few faults landed mid-run ({tally:?}): the test proved little"
    );
    assert_eq!(tally.converged, iterations());
}

fn pg_merge(fault: Fault, scenario: u64) {
    let db = faults_db(&format!("merge_{scenario}"));
    source_table(&db);
    let s = Scratch::new();
    s.write(
        "j.yaml",
        "connections:\n  app: {url: \"${env:FAULT_DB_URL}\"}\n\
         source: {plugin: postgres, grants: {sql: [app]}, config: {connection: app, table: src, incremental: {cursor: [updated_at]}, batch_rows: 2000, partitions: 2}}\n\
         sink: {plugin: postgres, grants: {sql: [app]}, config: {connection: app, table: dst, mode: merge}}\n\
         exec: {commit_every_rows: 6000, retries: 1}\n",
    );
    let env = [("FAULT_DB_URL", db.as_str())];
    let reset = || {
        sql(&db, "DROP TABLE IF EXISTS dst");
        let _ = std::fs::remove_dir_all(s.path(".sluice"));
    };
    let check = |i: usize| {
        let counted = sql(
            &db,
            "SELECT (SELECT count(*) FROM dst) || '/' || (SELECT count(DISTINCT id) FROM dst) || '/' || \
             (SELECT count(*) FROM ((TABLE src EXCEPT TABLE dst) UNION ALL (TABLE dst EXCEPT TABLE src)) d)",
        );
        assert_eq!(
            counted,
            format!("{ROWS}/{ROWS}/0"),
            "iteration {i}: rows/keys/differences"
        );
        let leftovers = sql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('src', 'dst')",
        );
        assert_eq!(leftovers, "0", "iteration {i}: tables left behind");
    };
    let path = Path {
        name: "pg merge",
        s: &s,
        env: &env,
        db: &db,
        reset: &reset,
        check: &check,
    };
    fault_loop(&path, scenario, fault);
}

/// An object store a fault loop writes to, seen through its own server's
/// API rather than through Sluice's code.
trait Lake {
    /// The job's settings section for this store.
    fn settings(&self) -> &'static str;
    /// The environment `sluice` runs with.
    fn env(&self) -> Vec<(&'static str, String)>;
    fn url(&self, prefix: &str) -> String;
    /// Every object name, staged or unfinished ones included.
    fn names(&self) -> Vec<String>;
    fn bytes(&self, name: &str) -> Vec<u8>;
    fn delete(&self, name: &str);
    /// What a run left half-done: open multipart uploads, staged objects.
    fn pending(&self) -> Vec<String>;
}

impl Lake for Bucket {
    fn settings(&self) -> &'static str {
        S3
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        aws_env(&endpoint())
    }
    fn url(&self, prefix: &str) -> String {
        Bucket::url(self, prefix)
    }
    fn names(&self) -> Vec<String> {
        self.keys()
    }
    fn bytes(&self, name: &str) -> Vec<u8> {
        self.get(name)
    }
    fn delete(&self, name: &str) {
        Bucket::delete(self, name)
    }
    fn pending(&self) -> Vec<String> {
        self.open_uploads()
    }
}

impl Lake for crate::gcs::Bucket {
    fn settings(&self) -> &'static str {
        crate::gcs::GCS
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        crate::gcs::gcs_env()
    }
    fn url(&self, prefix: &str) -> String {
        crate::gcs::Bucket::url(self, prefix)
    }
    fn names(&self) -> Vec<String> {
        crate::gcs::Bucket::names(self)
            .into_iter()
            .filter(|n| !n.contains("/.sluice-staging/"))
            .collect()
    }
    fn bytes(&self, name: &str) -> Vec<u8> {
        crate::gcs::Bucket::bytes(self, name)
    }
    fn delete(&self, name: &str) {
        crate::gcs::Bucket::delete(self, name)
    }
    fn pending(&self) -> Vec<String> {
        crate::gcs::Bucket::names(self)
            .into_iter()
            .filter(|n| n.contains("/.sluice-staging/"))
            .collect()
    }
}

/// PostgreSQL → Parquet files on `lake`, interrupted.
fn pg_to_lake(fault: Fault, scenario: u64, name: &str, lake: &dyn Lake) {
    let db = faults_db(&format!("lake_{scenario}"));
    source_table(&db);
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!(
            "{}connections:\n  app: {{url: \"${{env:FAULT_DB_URL}}\"}}\n\
             source: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: src, incremental: {{cursor: [updated_at]}}, batch_rows: 2000, partitions: 2}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'part-{{task}}-{{part}}.parquet'}}}}\n\
             exec: {{commit_every_rows: 6000, retries: 1}}\n",
            lake.settings(),
            lake.url("lake/")
        ),
    );
    let lake_env = lake.env();
    let mut env = refs(&lake_env);
    env.push(("FAULT_DB_URL", db.as_str()));
    let reset = || {
        for key in lake.names().into_iter().chain(lake.pending()) {
            lake.delete(&key);
        }
        let _ = std::fs::remove_dir_all(s.path(".sluice"));
    };
    let check = |i: usize| {
        let keys = lake.names();
        let mut ids = Vec::new();
        for key in &keys {
            assert!(
                key.starts_with("lake/part-") && key.ends_with(".parquet"),
                "{key}"
            );
            let bytes = bytes::Bytes::from(lake.bytes(key));
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap_or_else(|e| panic!("iteration {i}: {key} is not whole Parquet: {e}"))
                    .build()
                    .unwrap();
            for batch in reader {
                ids.extend(int64s(&batch.unwrap(), "id"));
            }
        }
        let total = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            (total, ids.len()),
            (ROWS as usize, ROWS as usize),
            "iteration {i}: rows and distinct keys in {} files",
            keys.len()
        );
        assert!(
            lake.pending().is_empty(),
            "iteration {i}: left half-done {:?}",
            lake.pending()
        );
        assert_eq!(journal_left(&s), 0, "iteration {i}: journal records left");
    };
    let path = Path {
        name,
        s: &s,
        env: &env,
        db: &db,
        reset: &reset,
        check: &check,
    };
    fault_loop(&path, scenario, fault);
}

fn pg_to_s3(fault: Fault, scenario: u64) {
    let bucket = Bucket::new(&format!("faults-{scenario}"));
    pg_to_lake(fault, scenario, "pg to s3 parquet", &bucket);
}

fn pg_to_gcs(fault: Fault, scenario: u64) {
    let bucket = crate::gcs::Bucket::new(&format!("faults-{scenario}"));
    pg_to_lake(fault, scenario, "pg to gcs parquet", &bucket);
}

/// PostgreSQL → BigQuery, appending (where only exactly-once loads keep
/// rows from arriving twice), through GCS staging or by direct upload.
fn pg_to_bigquery(fault: Fault, scenario: u64, staged: bool) {
    let db = faults_db(&format!("bigquery_{scenario}"));
    source_table(&db);
    let s = Scratch::new();
    let bucket = crate::gcs::Bucket::new(&format!("faults-bq-{scenario}"));
    let dataset = format!("faults_{scenario}_{}", std::process::id());
    let blob = if staged {
        format!(", blob: '{}'", bucket.url("stage/"))
    } else {
        String::new()
    };
    s.write(
        "j.yaml",
        format!(
            "{}connections:\n  app: {{url: \"${{env:FAULT_DB_URL}}\"}}\n\
             source: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: src, incremental: {{cursor: [updated_at]}}, batch_rows: 2000, partitions: 2}}}}\n\
             sink: {{plugin: bigquery, grants: {{bigquery: {{project: test-project, datasets: [{dataset}], endpoint: '${{env:BQ_ENDPOINT}}', credentials: anonymous}}{blob}}}, config: {{dataset: {dataset}, table: dst}}}}\n\
             exec: {{commit_every_rows: 12000, retries: 1}}\n",
            crate::gcs::GCS,
        ),
    );
    let gcs_env = crate::gcs::gcs_env();
    let bq = crate::bigquery::endpoint();
    let mut env = refs(&gcs_env);
    env.push(("FAULT_DB_URL", db.as_str()));
    env.push(("BQ_ENDPOINT", bq.as_str()));
    let table = format!("{dataset}.dst");
    let reset = || {
        crate::bigquery::drop_table(&dataset, "dst");
        for name in bucket.names() {
            bucket.delete(&name);
        }
        let _ = std::fs::remove_dir_all(s.path(".sluice"));
    };
    let check = |i: usize| {
        let counted = crate::bigquery::query(&format!(
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM `test-project.{table}`"
        ));
        assert_eq!(
            counted,
            [[ROWS.to_string(), ROWS.to_string()]],
            "iteration {i}: rows and distinct keys in {table}"
        );
        assert!(
            bucket.names().is_empty(),
            "iteration {i}: staged Parquet left {:?}",
            bucket.names()
        );
        assert_eq!(journal_left(&s), 0, "iteration {i}: journal records left");
    };
    let name = if staged {
        "pg to bigquery via gcs"
    } else {
        "pg to bigquery by upload"
    };
    let path = Path {
        name,
        s: &s,
        env: &env,
        db: &db,
        reset: &reset,
        check: &check,
    };
    fault_loop(&path, scenario, fault);
}

/// BigQuery (exported to GCS as Parquet) → PostgreSQL merge: the table
/// `src` put into BigQuery once, read back incrementally into `dst`.
fn bigquery_to_pg(fault: Fault, scenario: u64) {
    let db = faults_db(&format!("from_bigquery_{scenario}"));
    source_table(&db);
    let s = Scratch::new();
    let bucket = crate::gcs::Bucket::new(&format!("faults-bqs-{scenario}"));
    let dataset = format!("faults_{scenario}_{}", std::process::id());
    let grant = format!(
        "bigquery: {{project: test-project, datasets: [{dataset}], endpoint: '${{env:BQ_ENDPOINT}}', credentials: anonymous}}"
    );
    s.write(
        "seed.yaml",
        format!(
            "connections:\n  app: {{url: \"${{env:FAULT_DB_URL}}\"}}\n\
             source: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: src}}}}\n\
             sink: {{plugin: bigquery, grants: {{{grant}}}, config: {{dataset: {dataset}, table: src, mode: replace}}}}\n"
        ),
    );
    s.write(
        "j.yaml",
        format!(
            "{}connections:\n  app: {{url: \"${{env:FAULT_DB_URL}}\"}}\n\
             source: {{plugin: bigquery, grants: {{{grant}, blob: '{}'}}, config: {{dataset: {dataset}, table: src, read: export, incremental: {{cursor: [updated_at], key: [id]}}}}}}\n\
             sink: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: dst, mode: merge, key: [id]}}}}\n\
             exec: {{commit_every_rows: 12000, retries: 1}}\n",
            crate::gcs::GCS,
            bucket.url("work/"),
        ),
    );
    let gcs_env = crate::gcs::gcs_env();
    let bq = crate::bigquery::endpoint();
    let mut env = refs(&gcs_env);
    env.push(("FAULT_DB_URL", db.as_str()));
    env.push(("BQ_ENDPOINT", bq.as_str()));
    converge(&s, "seed.yaml", &env);
    let reset = || {
        sql(&db, "DROP TABLE IF EXISTS dst");
        let _ = std::fs::remove_dir_all(s.path(".sluice"));
    };
    reset();
    let check = |i: usize| {
        assert_eq!(
            sql(&db, "SELECT count(*) || ' ' || count(DISTINCT id) FROM dst"),
            format!("{ROWS} {ROWS}"),
            "iteration {i}: rows and distinct keys in dst"
        );
        assert!(
            bucket.names().is_empty(),
            "iteration {i}: exported Parquet left {:?}",
            bucket.names()
        );
    };
    let path = Path {
        name: "bigquery export to pg merge",
        s: &s,
        env: &env,
        db: &db,
        reset: &reset,
        check: &check,
    };
    fault_loop(&path, scenario, fault);
}

fn csv_replace(fault: Fault, scenario: u64) {
    let db = faults_db(&format!("replace_{scenario}"));
    let s = Scratch::new();
    let mut csv = String::from("id,name,amount\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{i},name {i},{}.{}\n", i % 1000, i % 10));
    }
    s.write("in/orders.csv", csv);
    s.write(
        "j.yaml",
        "connections:\n  app: {url: \"${env:FAULT_DB_URL}\"}\n\
         source: {plugin: file, grants: {blob: ./in}, config: {paths: ['*.csv'], split_bytes: 400000, batch_size: 2000}}\n\
         sink: {plugin: postgres, grants: {sql: [app]}, config: {connection: app, table: rep, mode: replace}}\n\
         exec: {retries: 1}\n",
    );
    let env = [("FAULT_DB_URL", db.as_str())];
    // The table from an earlier load stays: replace must swap it whole.
    sql(
        &db,
        "CREATE TABLE rep (id int8, name text, amount float8); INSERT INTO rep VALUES (-1, 'old', 0)",
    );
    let reset = || {
        let _ = std::fs::remove_dir_all(s.path(".sluice"));
    };
    let check = |i: usize| {
        let counted = sql(
            &db,
            "SELECT count(*) || '/' || count(DISTINCT id) || '/' || coalesce(min(id), -9) || '/' || coalesce(max(id), -9) FROM rep",
        );
        assert_eq!(
            counted,
            format!("{ROWS}/{ROWS}/0/{}", ROWS - 1),
            "iteration {i}"
        );
        let leftovers = sql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'rep'",
        );
        assert_eq!(leftovers, "0", "iteration {i}: staging tables left behind");
    };
    let path = Path {
        name: "csv replace",
        s: &s,
        env: &env,
        db: &db,
        reset: &reset,
        check: &check,
    };
    fault_loop(&path, scenario, fault);
}

#[test]
fn kill_9_during_a_postgres_merge_converges() {
    pg_merge(Fault::Kill, 1);
}

#[test]
fn kill_9_during_postgres_to_parquet_on_s3_converges() {
    pg_to_s3(Fault::Kill, 2);
}

#[test]
fn kill_9_during_postgres_to_parquet_on_gcs_converges() {
    pg_to_gcs(Fault::Kill, 7);
}

#[test]
fn kill_9_during_postgres_to_bigquery_through_gcs_converges() {
    pg_to_bigquery(Fault::Kill, 8, true);
}

#[test]
fn kill_9_during_postgres_to_bigquery_by_upload_converges() {
    pg_to_bigquery(Fault::Kill, 9, false);
}

#[test]
fn kill_9_during_bigquery_to_postgres_through_an_export_converges() {
    bigquery_to_pg(Fault::Kill, 10);
}

#[test]
fn kill_9_during_a_csv_to_postgres_replace_converges() {
    csv_replace(Fault::Kill, 3);
}

#[test]
fn terminated_backends_during_a_postgres_merge_converge() {
    pg_merge(Fault::Terminate, 4);
}

#[test]
fn terminated_backends_during_postgres_to_parquet_on_s3_converge() {
    pg_to_s3(Fault::Terminate, 5);
}

#[test]
fn terminated_backends_during_a_csv_to_postgres_replace_converge() {
    csv_replace(Fault::Terminate, 6);
}
