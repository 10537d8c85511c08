//! MySQL/MariaDB sources against a real server: the database `cargo xtask
//! test` creates (`SLUICE_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/sluice_test`). Each test uses its own
//! tables.

use crate::postgres::{pg, pg_url, pg_value};
use crate::support::*;

fn my_url() -> String {
    std::env::var("SLUICE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/sluice_test".into())
}

/// Run SQL (several statements allowed) on the MySQL test database.
fn my(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::MySqlConnection::connect(&my_url())
            .await
            .unwrap_or_else(|e| panic!("test database {}: {e}", my_url()));
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

fn job(source_config: &str, sink: &str) -> String {
    format!(
        "connections:\n  shop: {{url: \"${{env:SHOP_DB_URL}}\"}}\n  dw: {{url: \"${{env:DW_DB_URL}}\"}}\nsource:\n  plugin: mysql\n  grants: {{sql: [shop]}}\n  config: {source_config}\nsink:\n  {sink}\n"
    )
}

fn file_sink(path: &str) -> String {
    format!("plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: '{path}'}}")
}

fn run(s: &Scratch, job: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", job, "--json"];
    args.extend_from_slice(extra);
    let (my, pg) = (my_url(), pg_url());
    let out = s.sluice_env(&args, &[("SHOP_DB_URL", &my), ("DW_DB_URL", &pg)]);
    assert!(
        out.status.success(),
        "sluice {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lines(s: &Scratch, summary: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    for o in summary["outputs"].as_array().unwrap() {
        let text = std::fs::read_to_string(s.path("out").join(o.as_str().unwrap())).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

#[test]
fn mysql_types_arrive_as_arrow_types() {
    my("DROP TABLE IF EXISTS types_m;
        CREATE TABLE types_m (id BIGINT PRIMARY KEY, u BIGINT UNSIGNED, flag TINYINT(1), i INT,
            price DECIMAL(10,2), d DOUBLE, name VARCHAR(20), note TEXT, data BLOB, day DATE,
            at DATETIME(6), ts TIMESTAMP(6) NULL, doc JSON, size ENUM('s','m','l'));
        INSERT INTO types_m VALUES
          (1, 18446744073709551615, 1, -5, 12345.67, 2.5, 'ab', 'x''y', X'0102', '2024-02-29',
           '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05', '{\"a\": 1}', 'm'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        job("{connection: shop, table: types_m}", &file_sink("t.jsonl")),
    );
    let summary = run(&s, "j.yaml", &[]);
    assert_eq!(rows(&summary), 2);
    let first: serde_json::Value = serde_json::from_str(&lines(&s, &summary)[0]).unwrap();
    assert_eq!(first["u"], serde_json::json!(18446744073709551615u64));
    assert_eq!(first["flag"], true);
    assert_eq!(first["i"], -5);
    assert_eq!(
        first["price"],
        serde_json::json!(12345.67),
        "DECIMAL(10,2) is decimal(10,2)"
    );
    assert_eq!(first["d"], 2.5);
    assert_eq!(first["note"], "x'y");
    assert_eq!(first["day"], "2024-02-29");
    assert_eq!(first["at"], "2024-01-02T03:04:05.123456");
    assert_eq!(first["ts"], "2024-01-02T03:04:05Z");
    assert_eq!(first["size"], "m");
    // BLOB arrives as binary (hex in JSON Lines); JSON, which MariaDB
    // flags binary on the wire, as text.
    assert_eq!(first["data"], "0102");
    assert_eq!(first["doc"], "{\"a\": 1}");
}

#[test]
fn mysql_incremental_partitions_into_postgres_merge() {
    my("DROP TABLE IF EXISTS orders_m;
        CREATE TABLE orders_m (id INT PRIMARY KEY, amount DECIMAL(10,2), updated_at DATETIME(6) NOT NULL);
        INSERT INTO orders_m
          SELECT seq, seq / 4, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_5000;");
    pg("DROP SCHEMA IF EXISTS from_mysql CASCADE; CREATE SCHEMA from_mysql;");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        job(
            "{connection: shop, table: orders_m, incremental: {cursor: [updated_at]}, partitions: 2, batch_rows: 700}",
            "plugin: postgres\n  grants: {sql: [dw]}\n  config: {connection: dw, table: from_mysql.orders, mode: merge}",
        ),
    );
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 5000);
    assert_eq!(pg_value("SELECT count(*) FROM from_mysql.orders"), "5000");
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 0);
    my(
        "UPDATE orders_m SET amount = -1, updated_at = NOW(6) WHERE id % 1000 = 0;
        INSERT INTO orders_m VALUES (5001, 1, NOW(6));",
    );
    assert_eq!(rows(&run(&s, "j.yaml", &[])), 6);
    assert_eq!(pg_value("SELECT count(*) FROM from_mysql.orders"), "5001");
    assert_eq!(
        pg_value("SELECT count(*) FROM from_mysql.orders WHERE amount = '-1.00'"),
        "5"
    );
    assert_eq!(
        pg_value("SELECT sum(id) FROM from_mysql.orders"),
        (5001u64 * 5002 / 2).to_string()
    );
}

#[test]
fn mysql_bad_configs_fail_before_any_data_moves() {
    my("DROP TABLE IF EXISTS bad_m; CREATE TABLE bad_m (id INT PRIMARY KEY, v TEXT);");
    let s = Scratch::new();
    for (config, message) in [
        (
            "{connection: shop, table: nope_m}",
            "table `nope_m` does not exist",
        ),
        (
            "{connection: shop, table: bad_m, columns: [id, nope]}",
            "columns: table `bad_m` has no column `nope`",
        ),
        (
            "{connection: dw, table: bad_m}",
            "connection `dw` is not granted",
        ),
    ] {
        s.write("j.yaml", job(config, &file_sink("x.csv")));
        let (my, pg) = (my_url(), pg_url());
        let out = s.sluice_env(
            &["run", "j.yaml"],
            &[("SHOP_DB_URL", &my), ("DW_DB_URL", &pg)],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(message),
            "{config}: expected `{message}` in:\n{err}"
        );
    }
    // The mysql plugin refuses a PostgreSQL connection, and says so.
    s.write(
        "j.yaml",
        job("{connection: shop, table: bad_m}", &file_sink("x.csv")),
    );
    let pg = pg_url();
    let out = s.sluice_env(
        &["run", "j.yaml"],
        &[("SHOP_DB_URL", &pg), ("DW_DB_URL", &pg)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the mysql plugin works with"), "{err}");
}

/// The first column of the first row of a MySQL query, as text.
fn my_value(sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::MySqlConnection::connect(&my_url()).await.unwrap();
        let row = sqlx::query(&format!("SELECT CAST(({sql}) AS CHAR)"))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.get::<Option<String>, _>(0).unwrap_or_default()
    })
}

#[test]
fn postgres_into_mysql_merge_and_replace() {
    pg("DROP SCHEMA IF EXISTS to_mysql CASCADE; CREATE SCHEMA to_mysql;
        CREATE TABLE to_mysql.items (id int8 PRIMARY KEY, name text, price numeric(10,2),
            flag bool, day date, at timestamptz NOT NULL, data bytea);
        INSERT INTO to_mysql.items SELECT g, 'item ' || g, g * 0.25, g % 2 = 0, date '2024-01-01' + g % 100,
            timestamptz '2024-01-01 00:00:00+00' + g * interval '1 s', '\\x00ff'
          FROM generate_series(1, 3000) g;");
    my("DROP TABLE IF EXISTS items_merge, items_replace, items_replace__sluice_staging;");
    let s = Scratch::new();
    let pg_to_my = |mode: &str, table: &str| {
        format!(
            "connections:\n  shop: {{url: \"${{env:SHOP_DB_URL}}\"}}\n  dw: {{url: \"${{env:DW_DB_URL}}\"}}\nsource:\n  plugin: postgres\n  grants: {{sql: [dw]}}\n  config: {{connection: dw, table: to_mysql.items, partitions: 2}}\nsink:\n  plugin: mysql\n  grants: {{sql: [shop]}}\n  config: {{connection: shop, table: {table}, mode: {mode}}}\n"
        )
    };
    s.write("merge.yaml", pg_to_my("merge", "items_merge"));
    s.write("replace.yaml", pg_to_my("replace", "items_replace"));
    assert_eq!(rows(&run(&s, "merge.yaml", &[])), 3000);
    assert_eq!(rows(&run(&s, "replace.yaml", &[])), 3000);
    for t in ["items_merge", "items_replace"] {
        assert_eq!(my_value(&format!("SELECT count(*) FROM {t}")), "3000");
        assert_eq!(
            my_value(&format!("SELECT sum(price) FROM {t}")),
            "1125375.00"
        );
        assert_eq!(
            my_value(&format!(
                "SELECT concat(name, '|', flag, '|', day, '|', at, '|', hex(data)) FROM {t} WHERE id = 7"
            )),
            "item 7|0|2024-01-08|2024-01-01 00:00:07.000000|00FF"
        );
    }
    assert_eq!(
        my_value(
            "SELECT group_concat(column_name) FROM information_schema.key_column_usage WHERE table_schema = DATABASE() AND table_name = 'items_merge' AND constraint_name = 'PRIMARY'"
        ),
        "id"
    );
    // Changes: merge updates in place; replace swaps in exactly the new contents.
    pg(
        "UPDATE to_mysql.items SET name = 'changed' WHERE id <= 10; DELETE FROM to_mysql.items WHERE id > 2000;",
    );
    run(&s, "merge.yaml", &[]);
    run(&s, "replace.yaml", &[]);
    assert_eq!(my_value("SELECT count(*) FROM items_merge"), "3000");
    assert_eq!(
        my_value("SELECT count(*) FROM items_merge WHERE name = 'changed'"),
        "10"
    );
    assert_eq!(my_value("SELECT count(*) FROM items_replace"), "2000");
    assert_eq!(
        my_value("SELECT count(*) FROM items_replace WHERE name = 'changed'"),
        "10"
    );
    assert_eq!(
        my_value(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'items_replace\\_\\_%'"
        ),
        "0",
        "no staging table left behind"
    );
}

#[test]
fn mysql_example_runs() {
    my("DROP TABLE IF EXISTS orders;
        CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(20), total DECIMAL(10,2),
            updated_at DATETIME(6) NOT NULL);
        INSERT INTO orders SELECT seq, concat('c', seq % 5), seq * 1.5,
            TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_500;");
    pg("DROP SCHEMA IF EXISTS shop CASCADE; CREATE SCHEMA shop;");
    let s = Scratch::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/mysql-to-postgres.yaml");
    s.write("m.yaml", std::fs::read(example).unwrap());
    assert_eq!(rows(&run(&s, "m.yaml", &[])), 500);
    assert_eq!(pg_value("SELECT count(*) FROM shop.orders"), "500");
    // DECIMAL arrives as exact text, so the new column is text.
    assert_eq!(
        pg_value("SELECT total FROM shop.orders WHERE id = 3"),
        "4.50"
    );
}

#[test]
fn mysql_discover_lists_tables_with_keys_and_cursors() {
    my("DROP TABLE IF EXISTS disc_m;
        CREATE TABLE disc_m (id BIGINT PRIMARY KEY, email VARCHAR(80) NOT NULL, updated_at DATETIME(6));");
    let s = Scratch::new();
    s.write("j.yaml", job("{connection: shop}", &file_sink("x.csv")));
    let (my, pg) = (my_url(), pg_url());
    let out = s.sluice_env(
        &["discover", "j.yaml"],
        &[("SHOP_DB_URL", &my), ("DW_DB_URL", &pg)],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = &text[text.find("disc_m").expect("table listed")..];
    assert!(section.contains("primary key: id"), "{section}");
    assert!(section.contains("cursor: updated_at"), "{section}");
}
