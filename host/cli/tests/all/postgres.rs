//! PostgreSQL sources against a real server: the database `cargo xtask
//! test` creates (`SLUICE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/sluice_test`). Each test works in
//! its own schema.

use crate::support::*;

pub fn pg_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/sluice_test".into())
}

/// Run SQL (several statements allowed) on the test database.
pub fn pg(sql: &str) {
    pg_on(&pg_url(), sql);
}

/// Run SQL on the database at `url`.
pub fn pg_on(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("test database {url}: {e}"));
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// The URL of another database on the test server, created if missing.
pub fn pg_database(name: &str) -> String {
    let exists = pg_value(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    ));
    if exists == "0" {
        pg(&format!("CREATE DATABASE {name}"));
    }
    let base = pg_url();
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    format!("{server}/{name}")
}

/// A fresh schema for one test.
pub fn schema(name: &str) {
    pg(&format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};"
    ));
}

fn job(source_config: &str, sink_path: &str) -> String {
    format!(
        "connections:\n  app: {{url: \"${{env:APP_DB_URL}}\"}}\nsource:\n  plugin: postgres\n  grants: {{sql: [app]}}\n  config: {source_config}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: '{sink_path}'}}\n"
    )
}

fn run(s: &Scratch, job: &str, extra: &[&str]) -> serde_json::Value {
    // SAFETY of the env: the URL reaches the job only through ${env:…}.
    let mut args = vec!["run", job, "--json"];
    args.extend_from_slice(extra);
    let out = s.sluice_env(&args, &[("APP_DB_URL", &pg_url())]);
    assert!(
        out.status.success(),
        "sluice {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_err(s: &Scratch, job: &str, url: &str) -> String {
    let out = s.sluice_env(&["run", job], &[("APP_DB_URL", url)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "should fail cleanly:\n{stderr}");
    stderr
}

fn csv_rows(s: &Scratch, summary: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    for o in summary["outputs"].as_array().unwrap() {
        let text = std::fs::read_to_string(s.path("out").join(o.as_str().unwrap())).unwrap();
        lines.extend(text.lines().skip(1).map(str::to_string));
    }
    lines.sort();
    lines
}

#[test]
fn postgres_types_arrive_as_arrow_types() {
    schema("types_t");
    pg("CREATE TYPE types_t.mood AS ENUM ('sad', 'happy');
        CREATE TABLE types_t.everything (
            id int8 PRIMARY KEY, small int2, i int4, flag bool, r real, d float8,
            price numeric(12,2), plain numeric, name varchar(20), note text,
            data bytea, day date, at_time time, ts timestamp, tstz timestamptz,
            span interval, doc jsonb, raw json, uid uuid, tags text[], nums int4[],
            feeling types_t.mood, spot point);
        INSERT INTO types_t.everything VALUES
          (1, 2, 3, true, 1.5, 2.25, 12345.67, 3.14159265358979, 'ab', 'x''y', '\\x0102',
           '2024-02-29', '12:34:56.5', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+02',
           '1 mon 2 days 00:00:03', '{\"a\": 1}', '[1,2]', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '{x,NULL,z}', '{1,2}', 'happy', '(1,2)'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        job(
            "{connection: app, table: types_t.everything}",
            "all.parquet",
        ),
    );
    let summary = run(&s, "j.yaml", &[]);
    assert_eq!(rows(&summary), 2);
    let batch = concat(&read_parquet(&s.path("out/all.parquet")));
    let types: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    let expected = [
        "id:Int64",
        "small:Int16",
        "i:Int32",
        "flag:Boolean",
        "r:Float32",
        "d:Float64",
        "price:Decimal128(12, 2)",
        "plain:Utf8",
        "name:Utf8",
        "note:Utf8",
        "data:Binary",
        "day:Date32",
        "at_time:Time64(µs)",
        "ts:Timestamp(µs)",
        "tstz:Timestamp(µs, \"UTC\")",
        // Parquet has no lossless interval: ISO 8601 text.
        "span:Utf8",
        "doc:Utf8",
        "raw:Utf8",
        "uid:Utf8",
        "tags:List(Utf8)",
        "nums:List(Int32)",
        "feeling:Utf8",
        "spot:Utf8",
    ];
    for (got, want) in types.iter().zip(expected) {
        assert!(
            got.replace(' ', "").starts_with(&want.replace(' ', "")),
            "{got} should be {want}"
        );
    }
    assert_eq!(types.len(), expected.len());
    let row = arrow::util::display::ArrayFormatter::try_new(
        batch.column(6).as_ref(),
        &Default::default(),
    )
    .unwrap()
    .value(0)
    .to_string();
    assert_eq!(row, "12345.67");
    let text = to_csv(
        &batch
            .project(&[7, 9, 11, 13, 14, 15, 16, 18, 21, 22])
            .unwrap(),
    );
    let first = text.lines().nth(1).unwrap();
    assert_eq!(
        first,
        "3.14159265358979,x'y,2024-02-29,2024-01-02T03:04:05.123456,2024-01-02T01:04:05Z,P1M2DT3S,\"{\"\"a\"\": 1}\",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,happy,\"(1,2)\""
    );
    // The second row is all NULL but its key.
    assert_eq!(batch.column(1).null_count(), 1);
}

#[test]
fn postgres_incremental_in_parallel_partitions() {
    schema("inc_t");
    pg("CREATE TABLE inc_t.orders (id int8 PRIMARY KEY, amount int4, updated_at timestamptz NOT NULL);
        INSERT INTO inc_t.orders
          SELECT g, g % 100, timestamptz '2024-01-01' + g * interval '1 minute'
          FROM generate_series(1, 3000) g;");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        job(
            "{connection: app, table: inc_t.orders, incremental: {cursor: [updated_at]}, partitions: 3, batch_rows: 500}",
            "orders-{task}-{part}.csv",
        ),
    );
    let first = run(&s, "j.yaml", &[]);
    assert_eq!(rows(&first), 3000);
    assert_eq!(first["tasks"], 3);
    let ids: Vec<u64> = csv_rows(&s, &first)
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, (1..=3000).collect::<Vec<_>>(), "every row once");

    // Nothing changed: nothing read.
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 0);

    // Ten rows change and five arrive (beyond the last key range): only those.
    pg(
        "UPDATE inc_t.orders SET amount = -1, updated_at = now() WHERE id % 300 = 0;
        INSERT INTO inc_t.orders SELECT g, 7, now() FROM generate_series(3001, 3005) g;",
    );
    let third = run(&s, "j.yaml", &[]);
    let mut changed: Vec<u64> = csv_rows(&s, &third)
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    changed.sort();
    let mut want: Vec<u64> = (1..=10).map(|i| i * 300).chain(3001..=3005).collect();
    want.sort();
    assert_eq!(changed, want);

    // --full-refresh reads everything again.
    assert_eq!(rows(&run(&s, "j.yaml", &["--full-refresh"])), 3005);
}

#[test]
fn postgres_query_with_columns_and_where() {
    schema("query_t");
    pg(
        "CREATE TABLE query_t.items (id int4 PRIMARY KEY, name text, price numeric(8,2));
        INSERT INTO query_t.items VALUES (1, 'a', 1.50), (2, 'b', 20.00), (3, 'c', 300.25);",
    );
    let s = Scratch::new();
    s.write(
        "q.yaml",
        job(
            "{connection: app, query: \"SELECT id, upper(name) AS name, price * 2 AS doubled FROM query_t.items WHERE price > $$1$$\"}",
            "q.csv",
        )
        .replace("$$1$$", "1"),
    );
    let summary = run(&s, "q.yaml", &[]);
    assert_eq!(
        csv_rows(&s, &summary),
        vec!["1,A,3.00", "2,B,40.00", "3,C,600.50"]
    );

    s.write(
        "t.yaml",
        job(
            "{connection: app, table: query_t.items, columns: [name, id], where: \"price < 100\"}",
            "t.csv",
        ),
    );
    let summary = run(&s, "t.yaml", &[]);
    assert_eq!(csv_rows(&s, &summary), vec!["a,1", "b,2"]);
    // A full refresh reads everything again on the next run.
    assert_eq!(rows(&run(&s, "t.yaml", &[])), 2);
}

#[test]
fn postgres_bad_configs_fail_before_any_data_moves() {
    schema("bad_t");
    pg("CREATE TABLE bad_t.t (id int4 PRIMARY KEY, v text);");
    let s = Scratch::new();
    let cases = [
        (
            "{connection: app, table: bad_t.nope}",
            "table `bad_t.nope` does not exist",
        ),
        (
            "{connection: app, table: bad_t.t, columns: [id, nope]}",
            "columns: table `bad_t.t` has no column `nope`",
        ),
        (
            "{connection: app, table: bad_t.t, incremental: {cursor: [updated_at]}}",
            "incremental.cursor: table `bad_t.t` has no column `updated_at`",
        ),
        (
            "{connection: other, table: bad_t.t}",
            "connection `other` is not granted",
        ),
    ];
    for (config, message) in cases {
        s.write("j.yaml", job(config, "x.csv"));
        let err = run_err(&s, "j.yaml", &pg_url());
        assert!(
            err.contains(message),
            "{config}: expected `{message}` in:\n{err}"
        );
        assert!(!s.path("out/x.csv").exists(), "no output for a bad config");
    }
    // Wrong password: an auth error naming the connection.
    s.write("j.yaml", job("{connection: app, table: bad_t.t}", "x.csv"));
    let bad_url = pg_url().replace("postgres@", "sluice_nobody:wrong@");
    let err = run_err(&s, "j.yaml", &bad_url);
    assert!(err.contains("connection `app`"), "{err}");
    // The URL (and its password) is never printed.
    assert!(!err.contains("wrong@"), "{err}");
    // A grant naming an undeclared connection is a job error.
    s.write(
        "j.yaml",
        job("{connection: app, table: bad_t.t}", "x.csv")
            .replace("sql: [app]", "sql: [app, missing]"),
    );
    let err = run_err(&s, "j.yaml", &pg_url());
    assert!(
        err.contains("source.grants.sql: no connection named `missing`"),
        "{err}"
    );
}

#[test]
fn postgres_discover_lists_tables_with_keys_and_cursors() {
    schema("disc_t");
    pg(
        "CREATE TABLE disc_t.accounts (id int8 PRIMARY KEY, email text NOT NULL, updated_at timestamptz);",
    );
    let s = Scratch::new();
    s.write("j.yaml", job("{connection: app}", "x.csv"));
    let out = s.sluice_env(&["discover", "j.yaml"], &[("APP_DB_URL", &pg_url())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("disc_t.accounts"), "{text}");
    let section = &text[text.find("disc_t.accounts").unwrap()..];
    assert!(section.contains("updated_at"), "{section}");
}

/// The first column of the first row, as text.
pub fn pg_value(sql: &str) -> String {
    pg_value_on(&pg_url(), sql)
}

/// [`pg_value`] on the database at `url`.
pub fn pg_value_on(url: &str, sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let row = sqlx::query(&format!("SELECT ({sql})::text"))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.get::<Option<String>, _>(0).unwrap_or_default()
    })
}

/// Rows in `a` not in `b` plus rows in `b` not in `a`: 0 when equal.
pub fn differences(a: &str, b: &str) -> String {
    pg_value(&format!(
        "SELECT count(*) FROM ((TABLE {a} EXCEPT ALL TABLE {b}) UNION ALL (TABLE {b} EXCEPT ALL TABLE {a})) d"
    ))
}

pub fn pg_to_pg(source: &str, sink: &str) -> String {
    format!(
        "connections:\n  app: {{url: \"${{env:APP_DB_URL}}\"}}\nsource:\n  plugin: postgres\n  grants: {{sql: [app]}}\n  config: {source}\nsink:\n  plugin: postgres\n  grants: {{sql: [app]}}\n  config: {sink}\n"
    )
}

#[test]
fn postgres_to_postgres_append_creates_the_table_with_every_type() {
    schema("copy_t");
    pg("CREATE TABLE copy_t.src (
            id int8 PRIMARY KEY, small int2, flag bool, r real, d float8,
            price numeric(12,2), plain numeric, name varchar(20), data bytea, day date,
            at_time time, ts timestamp, tstz timestamptz, span interval, doc jsonb,
            uid uuid, tags text[], nums int4[]);
        INSERT INTO copy_t.src VALUES
          (1, 2, true, 1.5, 2.25, -12345.67, 3.14159265358979, 'ab', '\\x0102', '2024-02-29',
           '12:34:56.5', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+02',
           '1 mon 2 days 00:00:03', '{\"a\": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '{x,NULL,z}', '{1,2}'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL);
        INSERT INTO copy_t.src (id, plain, price) SELECT g, g * 1.5, g / 3.0 FROM generate_series(3, 5000) g;");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        pg_to_pg(
            "{connection: app, table: copy_t.src, partitions: 2}",
            "{connection: app, table: copy_t.dst}",
        ),
    );
    let summary = run(&s, "j.yaml", &[]);
    assert_eq!(rows(&summary), 5000);
    // Same values; plain numeric arrives as text, exactly.
    assert_eq!(
        pg_value(
            "SELECT count(*) FROM (SELECT id, small, flag, r, d, price, name, data, day, at_time, ts, tstz, span, doc::text, uid::text, tags, nums FROM copy_t.src EXCEPT SELECT id, small, flag, r, d, price, name, data, day, at_time, ts, tstz, span, doc::text, uid::text, tags, nums FROM copy_t.dst) x"
        ),
        "0"
    );
    assert_eq!(
        pg_value(
            "SELECT count(*) FROM copy_t.src s JOIN copy_t.dst d USING (id) WHERE s.plain::text IS NOT DISTINCT FROM d.plain::text"
        ),
        "5000"
    );
    assert_eq!(
        pg_value(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'copy_t.dst'::regclass AND attname = 'price'"
        ),
        "numeric(12,2)"
    );
    // Append: a second run adds the rows again.
    run(&s, "j.yaml", &[]);
    assert_eq!(pg_value("SELECT count(*) FROM copy_t.dst"), "10000");
}

#[test]
fn postgres_merge_keeps_the_target_equal_to_the_source() {
    schema("merge_t");
    pg(
        "CREATE TABLE merge_t.src (id int8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
        INSERT INTO merge_t.src SELECT g, 'v' || g, timestamptz '2024-01-01' + g * interval '1 s'
          FROM generate_series(1, 20000) g;",
    );
    let s = Scratch::new();
    s.write(
        "j.yaml",
        pg_to_pg(
            "{connection: app, table: merge_t.src, incremental: {cursor: [updated_at]}, partitions: 3, batch_rows: 3000}",
            "{connection: app, table: merge_t.dst, mode: merge}",
        ),
    );
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 20000);
    assert_eq!(differences("merge_t.src", "merge_t.dst"), "0");
    // Updates and inserts: merged, not duplicated.
    pg(
        "UPDATE merge_t.src SET v = 'changed', updated_at = now() WHERE id % 1000 = 0;
        INSERT INTO merge_t.src SELECT g, 'new', now() FROM generate_series(20001, 20100) g;",
    );
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 120);
    assert_eq!(differences("merge_t.src", "merge_t.dst"), "0");
    // A full refresh through merge changes nothing.
    run(&s, "j.yaml", &["--full-refresh"]);
    assert_eq!(differences("merge_t.src", "merge_t.dst"), "0");
    assert_eq!(
        pg_value(
            "SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'merge_t.dst'::regclass AND i.indisprimary"
        ),
        "id"
    );
}

#[test]
fn postgres_replace_swaps_in_the_new_contents() {
    schema("repl_t");
    pg("CREATE TABLE repl_t.src (id int4 PRIMARY KEY, v text);
        INSERT INTO repl_t.src SELECT g, 'a' FROM generate_series(1, 3000) g;");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        pg_to_pg(
            "{connection: app, table: repl_t.src, partitions: 3}",
            "{connection: app, table: repl_t.dst, mode: replace}",
        ),
    );
    run(&s, "j.yaml", &[]);
    assert_eq!(differences("repl_t.src", "repl_t.dst"), "0");
    pg("DELETE FROM repl_t.src WHERE id > 1000; UPDATE repl_t.src SET v = 'b';");
    run(&s, "j.yaml", &[]);
    assert_eq!(differences("repl_t.src", "repl_t.dst"), "0");
    assert_eq!(
        pg_value("SELECT count(*) FROM pg_class WHERE relname LIKE 'dst__sluice%'"),
        "0",
        "no staging table left behind"
    );
}

#[test]
fn postgres_sink_adds_new_columns_and_refuses_incompatible_ones() {
    schema("evo_t");
    pg("CREATE TABLE evo_t.src (id int4 PRIMARY KEY, a text);
        INSERT INTO evo_t.src VALUES (1, 'x');
        CREATE TABLE evo_t.dst (id int8 PRIMARY KEY, a text);");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        pg_to_pg(
            "{connection: app, table: evo_t.src}",
            "{connection: app, table: evo_t.dst, mode: merge}",
        ),
    );
    run(&s, "j.yaml", &[]);
    // The source grows a column: the target gets it, nullable.
    pg("ALTER TABLE evo_t.src ADD COLUMN b date; UPDATE evo_t.src SET b = '2024-05-01';");
    run(&s, "j.yaml", &[]);
    assert_eq!(
        pg_value("SELECT b FROM evo_t.dst WHERE id = 1"),
        "2024-05-01"
    );
    // A text column meets an integer one: refused, naming both.
    pg("ALTER TABLE evo_t.src ALTER COLUMN id TYPE text;");
    let err = run_err(&s, "j.yaml", &pg_url());
    assert!(
        err.contains("column `id` of `evo_t.dst` is bigint, which cannot take the data's Utf8"),
        "{err}"
    );
}

#[test]
fn postgres_examples_run() {
    pg("DROP TABLE IF EXISTS public.orders; DROP SCHEMA IF EXISTS analytics CASCADE;
        CREATE SCHEMA analytics;
        CREATE TABLE public.orders (id int8 PRIMARY KEY, customer_id int4, status text,
            total numeric(10,2), updated_at timestamptz NOT NULL);
        INSERT INTO public.orders SELECT g, g % 7, CASE WHEN g % 10 = 0 THEN 'draft' ELSE 'paid' END,
            g * 1.25, timestamptz '2024-03-01' + g * interval '1 s' FROM generate_series(1, 1000) g;");
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["postgres-to-parquet.yaml", "postgres-merge.yaml"] {
        s.write(name, std::fs::read(examples.join(name)).unwrap());
    }
    let env = [("APP_DB_URL", pg_url()), ("DW_DB_URL", pg_url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = s.sluice_env(&["run", "postgres-to-parquet.yaml", "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&summary), 900, "drafts are filtered out");
    assert_eq!(summary["tasks"], 4);
    let out = s.sluice_env(&["run", "postgres-merge.yaml", "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(differences("public.orders", "analytics.orders"), "0");
}

#[test]
fn postgres_source_survives_a_terminated_backend() {
    schema("kill_t");
    pg("CREATE TABLE kill_t.big (id int8 PRIMARY KEY, pad text);
        INSERT INTO kill_t.big SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g;");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        job(
            "{connection: app, table: kill_t.big, batch_rows: 2000}",
            "big-{task}-{part}.csv",
        )
        .replace("sink:", "exec: {retries: 2}\nsink:"),
    );
    // Terminate the backend streaming the rows, once, early in its stream:
    // a kill that lands after the last row was sent is harmless and would
    // leave nothing to retry, so wait for the COPY's own progress row.
    let killer = std::thread::spawn(|| {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(60) {
            let killed = pg_value(
                "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a
                 JOIN pg_stat_progress_copy p USING (pid)
                 WHERE a.application_name = 'sluice' AND a.state = 'active'
                   AND a.query LIKE 'COPY (SELECT%kill_t%'
                   AND p.tuples_processed BETWEEN 1 AND 100000",
            );
            if killed != "0" {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    });
    let out = s.sluice_env(
        &["run", "j.yaml", "--json"],
        &[("APP_DB_URL", &pg_url()), ("SLUICE_LOG", "warn")],
    );
    assert!(
        killer.join().unwrap(),
        "the COPY backend was never seen to terminate it"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("transient failure, retrying"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&summary), 1_000_000);
    // The failed attempt left no output behind: every id exactly once.
    let mut files = 0;
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(s.path("out")).unwrap() {
        files += 1;
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        ids.extend(
            text.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().to_string()),
        );
    }
    assert_eq!(files, summary["outputs"].as_array().unwrap().len());
    assert_eq!(ids.len(), 1_000_000);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1_000_000);
}

#[test]
fn postgres_merge_resumes_after_sigkill_without_loss_or_duplicates() {
    schema("crash_t");
    pg("CREATE TABLE crash_t.src (id int8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
        INSERT INTO crash_t.src SELECT g, md5(g::text), timestamptz '2024-01-01' + g * interval '1 ms'
          FROM generate_series(1, 400000) g;");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        pg_to_pg(
            "{connection: app, table: crash_t.src, incremental: {cursor: [updated_at]}, batch_rows: 5000}",
            "{connection: app, table: crash_t.dst, mode: merge}",
        ) + "exec: {commit_every_rows: 20000}\n",
    );
    // Start the run, and kill it (SIGKILL: no cleanup at all) once some
    // rows are committed (every 20,000 rows, at a source checkpoint).
    let url = pg_url();
    let mut child = s
        .command(&["run", "j.yaml"], &[("APP_DB_URL", &url)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let committed = loop {
        let n: u64 = pg_value("SELECT count(*) FROM pg_class WHERE relname = 'dst' AND relnamespace = 'crash_t'::regnamespace")
            .parse()
            .unwrap();
        let rows: u64 = if n == 1 {
            pg_value("SELECT count(*) FROM crash_t.dst")
                .parse()
                .unwrap()
        } else {
            0
        };
        // Three commits in: a resume at partition granularity would read
        // the whole first partition again, and fail the bound below.
        if rows >= 60_000 {
            break rows;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed().as_secs() < 60, "no commit within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(committed < 400_000, "killed after everything committed");
    // Run again: it resumes from the last committed checkpoint, inside the
    // partition. At most one commit's rows (plus a batch) are read twice:
    // those committed just before the kill, before their state was saved.
    let second = run(&s, "j.yaml", &[]);
    let again = rows(&second);
    assert!(
        again >= 400_000 - committed,
        "{again} rows after {committed} committed"
    );
    assert!(
        again <= 400_000 - committed + 25_000,
        "resumed from an earlier point than the last commit: {again} rows after {committed} committed"
    );
    assert_eq!(differences("crash_t.src", "crash_t.dst"), "0");
    // And a third run has nothing to do.
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 0);
}
