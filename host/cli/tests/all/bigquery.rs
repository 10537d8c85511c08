//! The `bigquery` sink against a real BigQuery emulator: the local-bigquery
//! `cargo xtask test` starts (`SLUICE_TEST_BIGQUERY_ENDPOINT`, default
//! `http://127.0.0.1:5060`), which loads `gs://` objects from the GCS
//! emulator. Tables are checked with plain HTTP queries to its REST API,
//! not through Sluice's own BigQuery code. Each test has its own dataset,
//! PostgreSQL schema and bucket.

use crate::gcs::{Bucket, GCS, gcs_env, run_err_with, run_with};
use crate::postgres::{pg, pg_url, schema};
use crate::s3::refs;
use crate::support::*;

pub(crate) const PROJECT: &str = "test-project";

pub(crate) fn endpoint() -> String {
    std::env::var("SLUICE_TEST_BIGQUERY_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5060".into())
}

pub(crate) fn port() -> u16 {
    endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the BigQuery endpoint has a port")
}

/// A dataset name for one test (the emulator keeps them between tests).
pub(crate) fn dataset(test: &str) -> String {
    format!("{test}_{}", std::process::id())
}

/// Run a query on the emulator: its rows, each a list of values as text
/// (`null` as "NULL").
pub(crate) fn query(sql: &str) -> Vec<Vec<String>> {
    let body = serde_json::json!({"query": sql, "useLegacySql": false}).to_string();
    let reply = http(
        port(),
        "POST",
        &format!("/bigquery/v2/projects/{PROJECT}/queries"),
        &[],
        Some(&body),
    )
    .expect("the BigQuery emulator answers");
    assert_eq!(reply.status, 200, "{sql}: {}", reply.body);
    let json = reply.json();
    json["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r["f"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| match &c["v"] {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Null => "NULL".into(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count(table: &str) -> u64 {
    query(&format!("SELECT COUNT(*) FROM `{PROJECT}.{table}`"))[0][0]
        .parse()
        .unwrap()
}

/// A table's REST description, or none.
fn table(dataset: &str, table: &str) -> Option<serde_json::Value> {
    let reply = http(
        port(),
        "GET",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{table}"),
        &[],
        None,
    )
    .unwrap();
    (reply.status == 200).then(|| reply.json())
}

/// Drop a table (a missing one is fine).
pub(crate) fn drop_table(dataset: &str, name: &str) {
    let reply = http(
        port(),
        "DELETE",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{name}"),
        &[],
        None,
    )
    .unwrap();
    assert!(reply.status < 300 || reply.status == 404, "{}", reply.body);
}

fn column_types(dataset: &str, name: &str) -> Vec<(String, String)> {
    table(dataset, name).unwrap()["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) fn bq_env() -> Vec<(&'static str, String)> {
    let mut env = gcs_env();
    env.push(("BQ_ENDPOINT", endpoint()));
    env.push(("APP_DB_URL", pg_url()));
    env
}

/// A job from PostgreSQL `source` into BigQuery, staged through `bucket`
/// when there is one, else uploaded directly.
fn job(source: &str, dataset: &str, sink: &str, bucket: Option<&str>) -> String {
    let blob = bucket.map_or(String::new(), |b| format!(", blob: '{b}'"));
    format!(
        "{GCS}connections:\n  app: {{url: \"${{env:APP_DB_URL}}\"}}\n\
         source: {{plugin: postgres, grants: {{sql: [app]}}, config: {source}}}\n\
         sink:\n  plugin: bigquery\n  grants: {{bigquery: {{project: {PROJECT}, datasets: [{dataset}], endpoint: '${{env:BQ_ENDPOINT}}', credentials: anonymous}}{blob}}}\n  config: {sink}\n"
    )
}

fn run(s: &Scratch, job: &str) -> serde_json::Value {
    run_with(s, job, &bq_env())
}

fn run_err(s: &Scratch, job: &str) -> String {
    run_err_with(s, job, &bq_env())
}

/// Orders with a key, a decimal, text, a zoned and a naive timestamp, a
/// date, a list and a cursor column.
pub(crate) fn orders(pg_schema: &str, rows: u32) {
    schema(pg_schema);
    pg(&format!(
        "CREATE TABLE {pg_schema}.orders (id int8 PRIMARY KEY, amount numeric(12,2), customer text,
           placed timestamp, updated_at timestamptz NOT NULL, day date, tags text[]);
         INSERT INTO {pg_schema}.orders SELECT g, g * 1.5, 'c' || (g % 7), timestamp '2026-01-01' + g * interval '1 minute',
           timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', date '2026-01-01' + (g % 3), ARRAY['t' || g]
           FROM generate_series(1, {rows}) g;"
    ));
}

#[test]
fn postgres_to_bigquery_append_then_merge_through_gcs() {
    orders("bq_merge", 5_000);
    let ds = dataset("merge");
    let bucket = Bucket::new("bq-merge");
    let s = Scratch::new();
    let source = "{connection: app, table: bq_merge.orders, incremental: {cursor: [updated_at]}, partitions: 2}";
    s.write(
        "merge.yaml",
        job(
            source,
            &ds,
            "{dataset: DS, table: orders, mode: merge, partition_by: {column: updated_at}, cluster_by: [customer], descriptions: {amount: 'order total'}}"
                .replace("DS", &ds)
                .as_str(),
            Some(&bucket.url("stage/")),
        ),
    );
    let first = run(&s, "merge.yaml");
    assert_eq!(rows(&first), 5_000);
    let t = format!("{ds}.orders");
    assert_eq!(count(&t), 5_000);
    // Types from Arrow, partitioning, clustering and descriptions.
    let described = table(&ds, "orders").unwrap();
    assert_eq!(described["timePartitioning"]["field"], "updated_at");
    assert_eq!(described["clustering"]["fields"][0], "customer");
    let types = column_types(&ds, "orders");
    for (column, ty) in [
        ("id", "INTEGER"),
        ("amount", "NUMERIC"),
        ("customer", "STRING"),
        ("placed", "DATETIME"),
        ("updated_at", "TIMESTAMP"),
        ("day", "DATE"),
        ("tags", "STRING"),
    ] {
        assert!(
            types.contains(&(column.to_string(), ty.to_string())),
            "{column} {ty} in {types:?}"
        );
    }
    assert_eq!(
        query(&format!(
            "SELECT customer, amount = 15, ARRAY_LENGTH(tags) FROM `{PROJECT}.{t}` WHERE id = 10"
        )),
        [["c3", "true", "1"]]
    );
    // Changed and new rows since: only they move, and merge on the key.
    pg("UPDATE bq_merge.orders SET customer = 'changed', updated_at = now() WHERE id <= 100;
        INSERT INTO bq_merge.orders SELECT g, 1, 'new', NULL, now(), NULL, NULL FROM generate_series(5001, 5050) g;");
    let second = run(&s, "merge.yaml");
    assert_eq!(rows(&second), 150);
    assert_eq!(count(&t), 5_050);
    assert_eq!(
        query(&format!(
            "SELECT COUNT(*) FROM `{PROJECT}.{t}` WHERE customer = 'changed'"
        )),
        [["100"]]
    );
    assert_eq!(
        query(&format!("SELECT COUNT(DISTINCT id) FROM `{PROJECT}.{t}`")),
        [["5050"]]
    );
    // Nothing left behind: no staged Parquet, no staging table.
    assert!(
        bucket
            .names()
            .iter()
            .all(|n| !n.contains(".sluice-staging")),
        "{:?}",
        bucket.names()
    );
    assert!(table(&ds, "orders__sluice_staging").is_none());
}

#[test]
fn replace_and_delete_in_advance_upload_directly() {
    orders("bq_replace", 300);
    let ds = dataset("replace");
    let s = Scratch::new();
    let source = "{connection: app, table: bq_replace.orders}";
    s.write(
        "replace.yaml",
        job(
            source,
            &ds,
            &format!("{{dataset: {ds}, table: snapshot, mode: replace}}"),
            None,
        ),
    );
    assert_eq!(rows(&run(&s, "replace.yaml")), 300);
    pg("DELETE FROM bq_replace.orders WHERE id > 120");
    assert_eq!(rows(&run(&s, "replace.yaml")), 120);
    assert_eq!(count(&format!("{ds}.snapshot")), 120);
    assert!(table(&ds, "snapshot__sluice_staging").is_none());

    // delete_in_advance: the day range is deleted, then this run's rows
    // (all of them, here) added.
    s.write(
        "days.yaml",
        job(
            source,
            &ds,
            &format!(
                "{{dataset: {ds}, table: days, mode: delete_in_advance, partition_by: {{column: day}}, delete_range: {{from: '2026-01-02', to: '2026-01-03'}}}}"
            ),
            None,
        ),
    );
    assert_eq!(rows(&run(&s, "days.yaml")), 120);
    assert_eq!(rows(&run(&s, "days.yaml")), 120);
    let by_day = query(&format!(
        "SELECT CAST(day AS STRING), COUNT(*) FROM `{PROJECT}.{ds}.days` GROUP BY day ORDER BY day"
    ));
    // Days 1 and 3 twice (outside the range), day 2 once.
    assert_eq!(
        by_day,
        [
            ["2026-01-01", "80"],
            ["2026-01-02", "40"],
            ["2026-01-03", "80"]
        ]
    );
}

#[test]
fn the_sink_adds_columns_and_refuses_incompatible_ones_before_any_row_moves() {
    schema("bq_schema");
    pg("CREATE TABLE bq_schema.t (id int8, v text);
        INSERT INTO bq_schema.t SELECT g, 'x' FROM generate_series(1, 10) g;");
    let ds = dataset("schema");
    let s = Scratch::new();
    let sink = format!("{{dataset: {ds}, table: t}}");
    s.write(
        "j.yaml",
        job("{connection: app, table: bq_schema.t}", &ds, &sink, None),
    );
    assert_eq!(rows(&run(&s, "j.yaml")), 10);
    // A new column appears in the source: it is added (nullable).
    pg("ALTER TABLE bq_schema.t ADD COLUMN extra float8; UPDATE bq_schema.t SET extra = 0.5;");
    assert_eq!(rows(&run(&s, "j.yaml")), 10);
    assert!(column_types(&ds, "t").contains(&("extra".into(), "FLOAT".into())));
    assert_eq!(
        query(&format!(
            "SELECT COUNT(*), COUNT(extra) FROM `{PROJECT}.{ds}.t`"
        )),
        [["20", "10"]]
    );
    // A column that cannot take the data: refused, naming both types.
    pg("ALTER TABLE bq_schema.t ALTER COLUMN id TYPE text;");
    let err = run_err(&s, "j.yaml");
    assert!(
        err.contains("column `id`") && err.contains("INT64") && err.contains("STRING"),
        "{err}"
    );
    assert_eq!(count(&format!("{ds}.t")), 20);
}

#[test]
fn a_failed_load_fails_the_task_with_bigquerys_words_and_leaves_nothing() {
    schema("bq_fail");
    pg("CREATE TABLE bq_fail.t (id int8, v text);
        INSERT INTO bq_fail.t VALUES (1, 'a'), (NULL, 'b');");
    let ds = dataset("fail");
    let bucket = Bucket::new("bq-fail");
    // The table exists with a REQUIRED column the data breaks.
    let created = http(
        port(),
        "POST",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
        &[],
        Some(
            &serde_json::json!({"datasetReference": {"projectId": PROJECT, "datasetId": ds}})
                .to_string(),
        ),
    )
    .unwrap();
    assert_eq!(created.status, 200, "{}", created.body);
    let fields = serde_json::json!([
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "v", "type": "STRING", "mode": "NULLABLE"}
    ]);
    let created = http(
        port(),
        "POST",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets/{ds}/tables"),
        &[],
        Some(
            &serde_json::json!({
                "tableReference": {"projectId": PROJECT, "datasetId": ds, "tableId": "t"},
                "schema": {"fields": fields}
            })
            .to_string(),
        ),
    )
    .unwrap();
    assert_eq!(created.status, 200, "{}", created.body);
    let s = Scratch::new();
    s.write(
        "j.yaml",
        job(
            "{connection: app, table: bq_fail.t}",
            &ds,
            &format!("{{dataset: {ds}, table: t}}"),
            Some(&bucket.url("stage/")),
        ),
    );
    let err = run_err(&s, "j.yaml");
    assert!(
        err.contains("plugin bigquery") && err.contains("BigQuery job") && err.contains("failed"),
        "{err}"
    );
    assert_eq!(count(&format!("{ds}.t")), 0);
    assert!(bucket.names().is_empty(), "{:?}", bucket.names());
}

#[test]
fn a_dataset_outside_the_grant_is_refused_before_any_row_moves() {
    orders("bq_grant", 10);
    let s = Scratch::new();
    let granted = dataset("granted");
    let other = dataset("other");
    s.write(
        "j.yaml",
        job(
            "{connection: app, table: bq_grant.orders}",
            &granted,
            &format!("{{dataset: {other}, table: t}}"),
            None,
        ),
    );
    let err = run_err(&s, "j.yaml");
    assert!(
        err.contains(&format!("dataset `{other}`")) && err.contains("is not granted"),
        "{err}"
    );
    let reply = http(
        port(),
        "GET",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets/{other}"),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(reply.status, 404, "the dataset was not created");
}

#[test]
fn a_commit_made_again_after_a_crash_loads_once() {
    // Commits every 1,000 rows; the process dies after the third commit's
    // load job ran but before its state was saved. The next run makes that
    // commit again: same job id, BigQuery's "already exists", no second load.
    orders("bq_crash", 5_000);
    let ds = dataset("crash");
    let bucket = Bucket::new("bq-crash");
    for (name, blob) in [("gcs", Some(bucket.url("stage/"))), ("upload", None)] {
        let s = Scratch::new();
        let table = format!("orders_{name}");
        s.write(
            "j.yaml",
            job(
                "{connection: app, table: bq_crash.orders, incremental: {cursor: [updated_at]}, batch_rows: 500}",
                &ds,
                &format!("{{dataset: {ds}, table: {table}}}"),
                blob.as_deref(),
            ) + "exec: {commit_every_rows: 1000}\n",
        );
        let mut crash = bq_env();
        crash.push(("SLUICE_FAILPOINTS", "pipeline.before-state-save@3".into()));
        let out = s.sluice_env(&["run", "j.yaml"], &refs(&crash));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            count(&format!("{ds}.{table}")),
            3_000,
            "{name}: three loads ran"
        );
        let again = run(&s, "j.yaml");
        assert_eq!(
            rows(&again),
            3_000,
            "{name}: the unsaved commit is made again"
        );
        assert_eq!(
            count(&format!("{ds}.{table}")),
            5_000,
            "{name}: no duplicates"
        );
        assert_eq!(
            query(&format!(
                "SELECT COUNT(DISTINCT id) FROM `{PROJECT}.{ds}.{table}`"
            )),
            [["5000"]]
        );
    }
}

#[test]
fn the_bigquery_example_runs_against_the_emulators() {
    // Its own database: the example reads `public.orders`, as other
    // examples' tests do in theirs.
    let url = crate::postgres::pg_database("sluice_test_bigquery");
    crate::postgres::pg_on(
        &url,
        "DROP TABLE IF EXISTS public.orders;
         CREATE TABLE public.orders (id int8 PRIMARY KEY, customer_id int4, total numeric(10,2),
             updated_at timestamptz NOT NULL);
         INSERT INTO public.orders SELECT g, g % 7, g * 1.25, timestamptz '2026-03-01' + g * interval '1 s'
             FROM generate_series(1, 2000) g;",
    );
    let bucket = Bucket::new("bq-example");
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    s.write(
        "postgres-to-bigquery.yaml",
        std::fs::read(examples.join("postgres-to-bigquery.yaml")).unwrap(),
    );
    // The emulators as an operator names them; the key from a secret.
    let env = vec![
        ("APP_DB_URL", url.clone()),
        ("GCP_PROJECT", PROJECT.to_string()),
        ("STAGING_URL", bucket.url("sluice/")),
        (
            "GCP_CREDENTIAL",
            crate::gcs::service_account_key().to_string(),
        ),
        (
            "STORAGE_EMULATOR_HOST",
            crate::gcs::endpoint()
                .trim_start_matches("http://")
                .to_string(),
        ),
        ("BIGQUERY_EMULATOR_HOST", endpoint()),
    ];
    // A table an earlier run against this emulator left.
    http(
        port(),
        "DELETE",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets/analytics/tables/orders"),
        &[],
        None,
    )
    .unwrap();
    let first = run_with(&s, "postgres-to-bigquery.yaml", &env);
    assert_eq!(rows(&first), 2_000);
    assert_eq!(count("analytics.orders"), 2_000);
    crate::postgres::pg_on(
        &url,
        "UPDATE public.orders SET total = 0, updated_at = now() WHERE id <= 10;",
    );
    assert_eq!(rows(&run_with(&s, "postgres-to-bigquery.yaml", &env)), 10);
    assert_eq!(
        query(&format!(
            "SELECT COUNT(*), COUNTIF(total = 0) FROM `{PROJECT}.analytics.orders`"
        )),
        [["2000", "10"]]
    );
}

#[test]
fn the_bigquery_workflow_example_runs_on_a_fleet() {
    // The application database, with the example's two tables.
    let app = crate::postgres::pg_database("sluice_test_bq_fleet");
    crate::postgres::pg_on(
        &app,
        "DROP TABLE IF EXISTS public.orders, public.customers;
         CREATE TABLE public.orders (id int8 PRIMARY KEY, customer_id int4, total numeric(10,2),
             updated_at timestamptz NOT NULL);
         INSERT INTO public.orders SELECT g, g % 7, g * 1.25, timestamptz '2026-03-01' + g * interval '1 s'
             FROM generate_series(1, 3000) g;
         CREATE TABLE public.customers (id int4 PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
         INSERT INTO public.customers SELECT g, 'customer ' || g, now() FROM generate_series(0, 6) g;",
    );
    let ds = dataset("fleet");
    let bucket = Bucket::new("bq-fleet");
    let mut f = crate::fleet::harness::Fleet::new("bigquery");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["daily.yaml", "jobs/table-to-bigquery.yaml"] {
        f.s.write(
            &format!("proj/{name}"),
            std::fs::read(examples.join("bigquery-project").join(name)).unwrap(),
        );
    }
    // The project's secrets, as an operator sets them.
    let key = crate::gcs::service_account_key().to_string();
    for (name, value) in [
        ("app_db_url", app.as_str()),
        ("gcp_credential", key.as_str()),
        ("slack_url", "http://127.0.0.1:9/hook"),
    ] {
        f.ok(&["secrets", "set", "dw", name, "--value", value]);
    }
    f.ok(&["push", "proj", "--project", "dw"]);
    let gcs_host = crate::gcs::endpoint()
        .trim_start_matches("http://")
        .to_string();
    let bigquery = endpoint();
    f.server_env(
        "scheduler,worker",
        &[],
        &[
            ("STORAGE_EMULATOR_HOST", &gcs_host),
            ("BIGQUERY_EMULATOR_HOST", &bigquery),
        ],
    );
    let dataset_param = format!("dataset={ds}");
    let staging_param = format!("staging_url={}", bucket.url("sluice/"));
    let start = || {
        f.ok(&[
            "start",
            "dw",
            "daily",
            "-p",
            "gcp_project=test-project",
            "-p",
            &dataset_param,
            "-p",
            &staging_param,
        ])
    };
    start();
    assert_eq!(
        f.wait_attempt(1, std::time::Duration::from_secs(120)),
        "succeeded"
    );
    assert_eq!(count(&format!("{ds}.orders")), 3_000);
    assert_eq!(count(&format!("{ds}.customers")), 7);
    // The next morning: only what changed moves, merged.
    crate::postgres::pg_on(
        &app,
        "UPDATE public.orders SET total = 0, updated_at = now() WHERE id <= 25;",
    );
    start();
    assert_eq!(
        f.wait_attempt(2, std::time::Duration::from_secs(120)),
        "succeeded"
    );
    assert_eq!(
        query(&format!(
            "SELECT COUNT(*), COUNTIF(total = 0) FROM `{PROJECT}.{ds}.orders`"
        )),
        [["3000", "25"]]
    );
}
