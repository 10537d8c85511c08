//! The `bigquery` source against the BigQuery emulator: rows put there by
//! the `bigquery` sink (from PostgreSQL) are read back, by the query's
//! result and by an export to GCS, in full and incrementally; a query that
//! reaches outside the grant is refused in every command.

use crate::bigquery::{PROJECT, bq_env, dataset, query};
use crate::gcs::{Bucket, GCS, run_err_with, run_with};
use crate::postgres::{pg, pg_value};
use crate::s3::refs;
use crate::support::*;

/// The grant of a source reading `ds`.
fn grant(ds: &str) -> String {
    format!(
        "bigquery: {{project: {PROJECT}, datasets: [{ds}], endpoint: '${{env:BQ_ENDPOINT}}', credentials: anonymous}}"
    )
}

/// Put `rows` orders into BigQuery table `ds.orders` (through the sink,
/// from PostgreSQL schema `pg_schema`).
fn seed(pg_schema: &str, ds: &str, count: u32) {
    crate::bigquery::orders(pg_schema, count);
    let s = Scratch::new();
    s.write(
        "seed.yaml",
        format!(
            "{GCS}connections:\n  app: {{url: \"${{env:APP_DB_URL}}\"}}\n\
             source: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: {pg_schema}.orders}}}}\n\
             sink: {{plugin: bigquery, grants: {{{}}}, config: {{dataset: {ds}, table: orders, mode: replace}}}}\n",
            grant(ds)
        ),
    );
    assert_eq!(
        rows(&run_with(&s, "seed.yaml", &bq_env())),
        u64::from(count)
    );
}

/// A job from BigQuery (`source` config, `blob` grant if any) into
/// PostgreSQL table `target`.
fn to_postgres(ds: &str, source: &str, blob: Option<&str>, target: &str) -> String {
    let blob = blob.map_or(String::new(), |b| format!(", blob: '{b}'"));
    format!(
        "{GCS}connections:\n  app: {{url: \"${{env:APP_DB_URL}}\"}}\n\
         source: {{plugin: bigquery, grants: {{{}{blob}}}, config: {source}}}\n\
         sink: {{plugin: postgres, grants: {{sql: [app]}}, config: {{connection: app, table: {target}, mode: append}}}}\n",
        grant(ds)
    )
}

#[test]
fn a_bigquery_table_reads_into_postgres_in_full_then_incrementally() {
    let ds = dataset("src_inc");
    seed("bqs_inc", &ds, 2_500);
    pg("CREATE SCHEMA IF NOT EXISTS bqs_inc_out; DROP TABLE IF EXISTS bqs_inc_out.orders");
    let s = Scratch::new();
    let source = format!(
        "{{dataset: {ds}, table: orders, incremental: {{cursor: [updated_at], key: [id]}}, batch_rows: 400}}"
    );
    s.write(
        "read.yaml",
        to_postgres(&ds, &source, None, "bqs_inc_out.orders"),
    );
    let first = run_with(&s, "read.yaml", &bq_env());
    assert_eq!(rows(&first), 2_500);
    // Every value came back as it went in: same rows, same sums, same
    // types in PostgreSQL.
    assert_eq!(
        pg_value(
            "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(amount)::numeric(20,2) FROM bqs_inc_out.orders"
        ),
        pg_value(
            "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(amount)::numeric(20,2) FROM bqs_inc.orders"
        )
    );
    assert_eq!(
        pg_value(
            "SELECT count(*) FROM bqs_inc_out.orders o JOIN bqs_inc.orders i USING (id)
             WHERE o.customer = i.customer AND o.updated_at = i.updated_at AND o.placed = i.placed
               AND o.day = i.day AND o.tags = i.tags"
        ),
        "2500"
    );
    // New and changed rows in BigQuery: only they move.
    query(&format!(
        "UPDATE `{PROJECT}.{ds}.orders` SET customer = 'changed', updated_at = TIMESTAMP '2030-01-01 00:00:00+00' WHERE id <= 10"
    ));
    query(&format!(
        "INSERT INTO `{PROJECT}.{ds}.orders` (id, amount, customer, updated_at) VALUES (9001, 1, 'new', TIMESTAMP '2030-01-02 00:00:00+00'), (9002, 2, 'new', TIMESTAMP '2030-01-02 00:00:00+00')"
    ));
    let second = run_with(&s, "read.yaml", &bq_env());
    assert_eq!(rows(&second), 12);
    assert_eq!(
        pg_value("SELECT count(*) FROM bqs_inc_out.orders WHERE customer IN ('changed', 'new')"),
        "12"
    );
    // Nothing new: nothing read.
    let third = run_with(&s, "read.yaml", &bq_env());
    assert_eq!(rows(&third), 0);
}

#[test]
fn a_query_exported_to_gcs_reads_as_parquet_and_leaves_nothing() {
    let ds = dataset("src_export");
    seed("bqs_export", &ds, 1_200);
    pg("CREATE SCHEMA IF NOT EXISTS bqs_export_out; DROP TABLE IF EXISTS bqs_export_out.big");
    let bucket = Bucket::new("bq-export");
    let s = Scratch::new();
    let source = format!(
        "{{query: 'SELECT id, amount, customer, updated_at FROM {ds}.orders WHERE id > 200', read: export, stream: big}}"
    );
    s.write(
        "export.yaml",
        to_postgres(
            &ds,
            &source,
            Some(&bucket.url("work/")),
            "bqs_export_out.big",
        ),
    );
    let summary = run_with(&s, "export.yaml", &bq_env());
    assert_eq!(rows(&summary), 1_000);
    assert_eq!(
        pg_value("SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM bqs_export_out.big"),
        "1000 201 1200"
    );
    assert_eq!(
        pg_value(
            "SELECT count(*) FROM bqs_export_out.big b JOIN bqs_export.orders o USING (id)
             WHERE b.amount = o.amount AND b.updated_at = o.updated_at"
        ),
        "1000"
    );
    // The exported Parquet was deleted once read.
    assert!(
        bucket.names().iter().all(|n| !n.contains("part-")),
        "{:?}",
        bucket.names()
    );
}

#[test]
fn a_query_outside_the_grant_is_refused_in_every_command() {
    let ds = dataset("src_wall");
    let other = dataset("src_wall_other");
    seed("bqs_wall", &ds, 20);
    seed("bqs_wall_other", &other, 20);
    pg("CREATE SCHEMA IF NOT EXISTS bqs_wall_out; DROP TABLE IF EXISTS bqs_wall_out.t");
    let s = Scratch::new();
    let cases = [
        // A join reaching a dataset the grant does not name.
        (
            format!("SELECT a.id FROM {ds}.orders a JOIN {other}.orders b USING (id)"),
            format!("{other}.orders"),
        ),
        // A subquery in `where`.
        (
            format!("SELECT id FROM {ds}.orders WHERE id IN (SELECT id FROM {other}.orders)"),
            format!("{other}.orders"),
        ),
        // Not a SELECT.
        (
            format!("DELETE FROM {ds}.orders WHERE TRUE"),
            "one SELECT".to_string(),
        ),
        // Metadata a dry run does not list.
        (
            format!("SELECT * FROM {ds}.INFORMATION_SCHEMA.TABLES"),
            "INFORMATION_SCHEMA".to_string(),
        ),
    ];
    for (sql, named) in cases {
        let source = format!("{{query: \"{sql}\"}}");
        s.write(
            "wall.yaml",
            to_postgres(&ds, &source, None, "bqs_wall_out.t"),
        );
        let stderr = run_err_with(&s, "wall.yaml", &bq_env());
        assert!(stderr.contains(&named), "{sql}: {stderr}");
        assert!(stderr.contains("bigquery"), "names the plugin: {stderr}");
        for command in ["check", "discover", "preview"] {
            let out = s.sluice_env(&[command, "wall.yaml"], &refs(&bq_env()));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} {sql}: {stderr}");
            assert!(stderr.contains(&named), "{command} {sql}: {stderr}");
        }
    }
    // The DELETE never ran; nothing reached PostgreSQL.
    assert_eq!(
        query(&format!("SELECT COUNT(*) FROM `{PROJECT}.{ds}.orders`")),
        [["20"]]
    );
    assert_eq!(
        pg_value("SELECT count(*) FROM pg_tables WHERE schemaname = 'bqs_wall_out'"),
        "0"
    );
    // A table of the granted dataset reads; the same table named in a
    // dataset it was not granted does not.
    s.write(
        "ok.yaml",
        to_postgres(
            &ds,
            &format!("{{dataset: {ds}, table: orders}}"),
            None,
            "bqs_wall_out.t",
        ),
    );
    assert_eq!(rows(&run_with(&s, "ok.yaml", &bq_env())), 20);
    s.write(
        "other.yaml",
        to_postgres(
            &ds,
            &format!("{{dataset: {other}, table: orders}}"),
            None,
            "bqs_wall_out.t2",
        ),
    );
    let stderr = run_err_with(&s, "other.yaml", &bq_env());
    assert!(stderr.contains("outside the grant"), "{stderr}");
}

#[test]
fn the_bigquery_to_postgres_example_runs_against_the_emulator() {
    // The example's dataset and table, as a warehouse would have them.
    let reply = http(
        crate::bigquery::port(),
        "POST",
        &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
        &[],
        Some(r#"{"datasetReference": {"datasetId": "analytics"}}"#),
    )
    .unwrap();
    assert!(reply.status == 200 || reply.status == 409, "{}", reply.body);
    let scores = format!("`{PROJECT}.analytics.customer_scores`");
    query(&format!(
        "CREATE OR REPLACE TABLE {scores} (customer_id INT64, score FLOAT64, segment STRING, scored_at TIMESTAMP)"
    ));
    let values: Vec<String> = (1..=300)
        .map(|i| {
            let segment = if i % 10 == 0 { "NULL".to_string() } else { format!("'s{}'", i % 3) };
            format!("({i}, {i}.5, {segment}, TIMESTAMP_ADD(TIMESTAMP '2026-12-01 00:00:00+00', INTERVAL {i} SECOND))")
        })
        .collect();
    query(&format!(
        "INSERT INTO {scores} VALUES {}",
        values.join(", ")
    ));
    let url = crate::postgres::pg_database("sluice_test_bq_source");
    crate::postgres::pg_on(&url, "DROP TABLE IF EXISTS public.customer_scores");
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    s.write(
        "bigquery-to-postgres.yaml",
        std::fs::read(examples.join("bigquery-to-postgres.yaml")).unwrap(),
    );
    let env = vec![
        ("APP_DB_URL", url.clone()),
        ("GCP_PROJECT", PROJECT.to_string()),
        (
            "GCP_CREDENTIAL",
            crate::gcs::service_account_key().to_string(),
        ),
        ("BIGQUERY_EMULATOR_HOST", crate::bigquery::endpoint()),
    ];
    // Rows without a segment are left out by `where`.
    assert_eq!(rows(&run_with(&s, "bigquery-to-postgres.yaml", &env)), 270);
    query(&format!(
        "UPDATE {scores} SET score = 0, scored_at = TIMESTAMP '2026-12-07 00:00:00+00' WHERE customer_id <= 5"
    ));
    assert_eq!(rows(&run_with(&s, "bigquery-to-postgres.yaml", &env)), 5);
    assert_eq!(
        crate::postgres::pg_value_on(
            &url,
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE score = 0) FROM public.customer_scores"
        ),
        "270 5"
    );
}
