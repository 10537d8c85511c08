//! `cargo xtask bench [files|filter|db|s3|gcs|bigquery|sdk|queue|api|all] [--rows N] [--object-gb G]`.
//!
//! Every figure is the median of three runs, measured in this run beside its
//! baseline and printed as a ratio; every output's row count is verified.
//! Nothing here is a test: timings never fail a build.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{bin_dir, run, target_dir};

mod bigquery;
mod sdk;

struct Row {
    what: String,
    seconds: f64,
    rss_mb: Option<f64>,
    rows: u64,
    bytes: u64,
}

fn bench_bin() -> PathBuf {
    bin_dir().join("sluice-bench")
}

/// Run `cmd` under `sluice-bench time` three times: (median seconds, peak
/// RSS MB), as BENCHMARKS.md measures the peers.
fn timed(cmd: &mut Command) -> Result<(f64, f64)> {
    let mut seconds = Vec::new();
    let mut rss: f64 = 0.0;
    for _ in 0..3 {
        let (s, m) = timed_once(cmd)?;
        seconds.push(s);
        rss = rss.max(m);
    }
    seconds.sort_by(f64::total_cmp);
    Ok((seconds[1], rss))
}

fn timed_once(cmd: &mut Command) -> Result<(f64, f64)> {
    let mut wrapped = Command::new(bench_bin());
    wrapped
        .arg("time")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    let out = wrapped.output().context("running sluice-bench time")?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok((
        v["seconds"].as_f64().unwrap_or(0.0),
        v["peak_rss_mb"].as_f64().unwrap_or(0.0),
    ))
}

fn parquet_rows(file: &Path) -> Result<u64> {
    let out = Command::new(bench_bin())
        .arg("count-parquet")
        .arg(file)
        .output()?;
    if !out.status.success() {
        bail!(
            "cannot count rows of {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn print_table(title: &str, rows: &[Row], reference: usize) {
    println!("\n### {title}\n");
    println!(
        "| run | seconds | rows/s | MB/s | peak RSS MB | time vs {} |",
        rows[reference].what
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.2} | {:.0} | {:.1} | {} | {:.2}× |",
            r.what,
            r.seconds,
            r.rows as f64 / r.seconds,
            r.bytes as f64 / 1e6 / r.seconds,
            r.rss_mb
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "-".into()),
            r.seconds / rows[reference].seconds,
        );
    }
}

/// `data/lineitem-<rows>.csv` under `work`, generated once and kept.
fn lineitem_csv(work: &Path, rows: u64) -> Result<PathBuf> {
    let csv = work.join(format!("data/lineitem-{rows}.csv"));
    std::fs::create_dir_all(work.join("data"))?;
    std::fs::create_dir_all(work.join("out"))?;
    if !csv.is_file() {
        std::fs::write(
            work.join("make-csv.yaml"),
            format!(
                "source:\n  plugin: generate\n  config: {{rows: {rows}, batch_size: 65536}}\nsink:\n  plugin: file\n  grants: {{blob: ./data}}\n  config: {{path: lineitem-{rows}.csv, mode: overwrite}}\n"
            ),
        )?;
        run(Command::new(bin_dir().join("sluice"))
            .current_dir(work)
            .args(["run", "--full-refresh", "make-csv.yaml"]))?;
    }
    Ok(csv)
}

fn files(work: &Path, rows: u64) -> Result<()> {
    let sluice = bin_dir().join("sluice");
    let csv = lineitem_csv(work, rows)?;
    let bytes = std::fs::metadata(&csv)?.len();
    std::fs::write(
        work.join("csv-to-parquet.yaml"),
        format!(
            "source:\n  plugin: file\n  grants: {{blob: ./data}}\n  config: {{paths: [lineitem-{rows}.csv], batch_size: 65536}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: sluice.parquet, compression: zstd, mode: overwrite}}\n"
        ),
    )?;
    let mut table = Vec::new();
    // Warm the page cache and the component cache once.
    let _ = Command::new(&sluice)
        .current_dir(work)
        .args(["run", "--full-refresh", "csv-to-parquet.yaml"])
        .output();
    let (s, m) = timed(Command::new(&sluice).current_dir(work).args([
        "run",
        "--full-refresh",
        "csv-to-parquet.yaml",
    ]))?;
    check_rows(&work.join("out/sluice.parquet"), rows)?;
    table.push(Row {
        what: "sluice run (wasm file source + sink)".into(),
        seconds: s,
        rss_mb: Some(m),
        rows,
        bytes,
    });
    if Command::new("taskset").arg("--version").output().is_ok() {
        // The same run held to one core: the "on one core" figure, and
        // beside it the same with uncompressed Parquet, which shows what
        // zstd costs on this machine.
        std::fs::write(
            work.join("csv-to-parquet-plain.yaml"),
            format!(
                "source:\n  plugin: file\n  grants: {{blob: ./data}}\n  config: {{paths: [lineitem-{rows}.csv], batch_size: 65536}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: sluice-plain.parquet, compression: none, mode: overwrite}}\n"
            ),
        )?;
        for (job, out, what) in [
            (
                "csv-to-parquet.yaml",
                "sluice.parquet",
                "sluice run, one core (taskset -c 0)",
            ),
            (
                "csv-to-parquet-plain.yaml",
                "sluice-plain.parquet",
                "sluice run, one core, Parquet not compressed",
            ),
        ] {
            let (s, m) = timed(
                Command::new("taskset")
                    .args(["-c", "0"])
                    .arg(&sluice)
                    .current_dir(work)
                    .args(["run", "--full-refresh", job]),
            )?;
            check_rows(&work.join("out").join(out), rows)?;
            table.push(Row {
                what: what.into(),
                seconds: s,
                rss_mb: Some(m),
                rows,
                bytes,
            });
        }
    }
    // One file, read as byte ranges by both cores at once.
    std::fs::write(
        work.join("csv-to-parquet-split.yaml"),
        format!(
            "source:\n  plugin: file\n  grants: {{blob: ./data}}\n  config: {{paths: [lineitem-{rows}.csv], batch_size: 65536, split_bytes: 67108864}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: 'split/{{task}}.parquet', compression: zstd, mode: overwrite}}\nexec: {{parallelism: 2}}\n"
        ),
    )?;
    let _ = std::fs::remove_dir_all(work.join("out/split"));
    let (s, m) = timed(Command::new(&sluice).current_dir(work).args([
        "run",
        "--full-refresh",
        "csv-to-parquet-split.yaml",
    ]))?;
    let mut split_rows = 0;
    for entry in std::fs::read_dir(work.join("out/split"))? {
        split_rows += parquet_rows(&entry?.path())?;
    }
    if split_rows != rows {
        bail!("split run wrote {split_rows} rows, expected {rows}");
    }
    table.push(Row {
        what: "sluice run, split_bytes 64 MB (2 partitions at once)".into(),
        seconds: s,
        rss_mb: Some(m),
        rows,
        bytes,
    });
    let native_out = work.join("out/native.parquet");
    let (s, m) = timed(
        Command::new(bench_bin())
            .arg("csv-to-parquet")
            .arg(&csv)
            .arg(&native_out),
    )?;
    check_rows(&native_out, rows)?;
    table.push(Row {
        what: "native arrow-csv → parquet, one thread, no wasm".into(),
        seconds: s,
        rss_mb: Some(m),
        rows,
        bytes,
    });
    if python_has("polars") {
        let out = work.join("out/polars.parquet");
        let script = format!(
            "import polars as pl; pl.scan_csv('{}').sink_parquet('{}', compression='zstd', compression_level=1)",
            csv.display(),
            out.display()
        );
        let (s, m) = timed(Command::new("python3").args(["-c", &script]))?;
        check_rows(&out, rows)?;
        table.push(Row {
            what: "polars scan_csv().sink_parquet()".into(),
            seconds: s,
            rss_mb: Some(m),
            rows,
            bytes,
        });
    } else {
        println!("(polars not installed: `pip install polars` to compare)");
    }
    if python_has("duckdb") {
        let out = work.join("out/duckdb.parquet");
        let script = format!(
            "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv('{}')) TO '{}' (FORMAT parquet, COMPRESSION zstd)\")",
            csv.display(),
            out.display()
        );
        let (s, m) = timed(Command::new("python3").args(["-c", &script]))?;
        check_rows(&out, rows)?;
        table.push(Row {
            what: "duckdb COPY read_csv → parquet".into(),
            seconds: s,
            rss_mb: Some(m),
            rows,
            bytes,
        });
    } else {
        println!("(duckdb not installed: `pip install duckdb` to compare)");
    }
    print_table(
        &format!(
            "CSV → Parquet (zstd), {rows} rows, {:.0} MB of CSV",
            bytes as f64 / 1e6
        ),
        &table,
        0,
    );
    csv_decode(&csv)?;

    // generate → Parquet.
    std::fs::write(
        work.join("generate.yaml"),
        format!(
            "source:\n  plugin: generate\n  config: {{rows: {rows}, batch_size: 65536}}\nsink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: generated.parquet, mode: overwrite}}\nexec: {{parallelism: 1}}\n"
        ),
    )?;
    let (s, m) = timed(Command::new(&sluice).current_dir(work).args([
        "run",
        "--full-refresh",
        "generate.yaml",
    ]))?;
    check_rows(&work.join("out/generated.parquet"), rows)?;
    let mut table = vec![Row {
        what: "sluice run generate → parquet".into(),
        seconds: s,
        rss_mb: Some(m),
        rows,
        bytes: 0,
    }];
    let out = work.join("out/generated-native.parquet");
    let (s, m) = timed(
        Command::new(bench_bin())
            .arg("generate-to-parquet")
            .arg(rows.to_string())
            .arg(&out),
    )?;
    check_rows(&out, rows)?;
    table.push(Row {
        what: "native generator → parquet, one thread, no wasm".into(),
        seconds: s,
        rss_mb: Some(m),
        rows,
        bytes: 0,
    });
    print_table(&format!("generate → Parquet, {rows} rows"), &table, 0);
    Ok(())
}

/// Decoding alone, no Parquet: Sluice's CSV reader against arrow-csv on the
/// same file, in one process held to one core (best of three passes each).
fn csv_decode(csv: &Path) -> Result<()> {
    let mut cmd = if Command::new("taskset").arg("--version").output().is_ok() {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(bench_bin());
        cmd
    } else {
        Command::new(bench_bin())
    };
    let out = cmd.arg("csv-decode").arg(csv).output()?;
    if !out.status.success() {
        bail!(
            "sluice-bench csv-decode: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let num = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    println!("\n### CSV decoding alone, one core, {} rows\n", v["rows"]);
    println!("| decoder | seconds | MB/s | time vs sluice |");
    println!("|---|---:|---:|---:|");
    println!(
        "| sluice CSV reader | {:.2} | {:.1} | 1.00× |",
        num("sluice_s"),
        num("sluice_mb_s")
    );
    println!(
        "| arrow-csv | {:.2} | {:.1} | {:.2}× |",
        num("arrow_csv_s"),
        num("arrow_csv_mb_s"),
        num("arrow_csv_s") / num("sluice_s")
    );
    Ok(())
}

fn check_rows(file: &Path, expected: u64) -> Result<()> {
    let got = parquet_rows(file)?;
    if got != expected {
        bail!("{} has {got} rows, expected {expected}", file.display());
    }
    Ok(())
}

fn filter() -> Result<()> {
    let plugins = bin_dir().join("plugins");
    let run_json = |mode: &str| -> Result<Value> {
        let out = Command::new(bench_bin()).arg(mode).arg(&plugins).output()?;
        if !out.status.success() {
            bail!(
                "sluice-bench {mode}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    // Median of three runs, by the wasm/native ratio.
    let median = |mode: &str, key: &str| -> Result<Value> {
        let mut runs = vec![run_json(mode)?, run_json(mode)?, run_json(mode)?];
        runs.sort_by(|a, b| {
            a[key]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b[key].as_f64().unwrap_or(0.0))
        });
        Ok(runs.swap_remove(1))
    };
    let f = median("filter", "ratio")?;
    println!("\n### select filter: wasm vs the same crate native\n");
    println!("| | batches | rows in → out | native s | wasm s | wasm / native |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| where + drop + cast | {} | {} → {} | {:.3} | {:.3} | {:.2}× |",
        f["batches"],
        f["rows_in"],
        f["rows_out"],
        f["native_s"].as_f64().unwrap_or(0.0),
        f["wasm_s"].as_f64().unwrap_or(0.0),
        f["ratio"].as_f64().unwrap_or(0.0)
    );
    let o = median("overhead", "wasm_us_per_call")?;
    println!("\n### Per-batch call overhead (one-row batches through `where: order_key >= 0`)\n");
    println!("| calls | native µs/call | wasm µs/call | overhead µs/call |");
    println!("|---:|---:|---:|---:|");
    let (n, w) = (
        o["native_us_per_call"].as_f64().unwrap_or(0.0),
        o["wasm_us_per_call"].as_f64().unwrap_or(0.0),
    );
    println!("| {} | {n:.2} | {w:.2} | {:.2} |", o["batches"], w - n);
    Ok(())
}

/// Run SQL on the benchmark database; the first value of the output.
fn psql(sql: &str) -> Result<String> {
    let out = crate::services::psql("sluice_bench")
        .args(["-At", "-c", sql])
        .output()
        .context("psql")?;
    if !out.status.success() {
        bail!("{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A lineitem-like table of `rows` rows (kept between runs).
fn lineitem_table(rows: u64) -> Result<String> {
    let table = format!("lineitem_{rows}");
    let exists = psql(&format!("SELECT to_regclass('{table}') IS NOT NULL"))? == "t";
    let have = if exists {
        psql(&format!("SELECT count(*) FROM {table}"))?
    } else {
        String::new()
    };
    if have != rows.to_string() {
        eprintln!("making {table} (once)…");
        psql(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (
               id bigint PRIMARY KEY, orderkey bigint NOT NULL, partkey bigint NOT NULL,
               suppkey integer NOT NULL, linenumber integer NOT NULL,
               quantity numeric(12,2) NOT NULL, extendedprice numeric(12,2) NOT NULL,
               discount numeric(4,2) NOT NULL, tax numeric(4,2) NOT NULL,
               returnflag char(1) NOT NULL, linestatus char(1) NOT NULL,
               shipdate date NOT NULL, commitdate date NOT NULL, receiptdate date NOT NULL,
               shipinstruct varchar(25) NOT NULL, shipmode varchar(10) NOT NULL,
               comment varchar(44) NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO {table}
             SELECT g, g / 4, (g * 7919) % 200000, (g * 31) % 10000, g % 7 + 1,
                    (g % 50) + 1, ((g * 37) % 100000) / 100.0 + 900, (g % 11) / 100.0, (g % 9) / 100.0,
                    substr('ANR', (g % 3)::int + 1, 1), substr('OF', (g % 2)::int + 1, 1),
                    date '1992-01-01' + (g % 2500)::int, date '1992-01-31' + (g % 2500)::int,
                    date '1992-02-15' + (g % 2500)::int,
                    (ARRAY['DELIVER IN PERSON','COLLECT COD','NONE','TAKE BACK RETURN'])[(g % 4)::int + 1],
                    (ARRAY['TRUCK','MAIL','SHIP','AIR','RAIL','FOB','REG AIR'])[(g % 7)::int + 1],
                    md5(g::text), timestamptz '2024-01-01' + g * interval '1 ms'
             FROM generate_series(1::bigint, {rows}) g;
             ANALYZE {table};"
        ))?;
    }
    Ok(table)
}

fn db(work: &Path, rows: u64) -> Result<()> {
    let url = crate::services::postgres_database("sluice_bench")?;
    let table = lineitem_table(rows)?;
    let sluice = bin_dir().join("sluice");
    let out = work.join("db-out");
    let text_bytes: u64 = {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "psql -h 127.0.0.1 -U postgres -d sluice_bench -c 'COPY {table} TO STDOUT' | wc -c"
            ))
            .output()?;
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let job = |name: &str, source: &str, sink: &str| -> Result<PathBuf> {
        let path = work.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "connections:\n  bench: {{url: \"{url}\"}}\nsource:\n  plugin: postgres\n  grants: {{sql: [bench]}}\n  config: {source}\nsink:\n  {sink}\n"
            ),
        )?;
        Ok(path)
    };
    let mut results = Vec::new();
    let mut add = |what: &str, (seconds, rss): (f64, f64)| {
        results.push(Row {
            what: what.into(),
            seconds,
            rss_mb: Some(rss),
            rows,
            bytes: text_bytes,
        });
    };
    add(
        "psql `COPY … TO STDOUT` (text) to /dev/null",
        timed(Command::new("sh").arg("-c").arg(format!(
            "psql -h 127.0.0.1 -U postgres -d sluice_bench -c 'COPY {table} TO STDOUT' > /dev/null"
        )))?,
    );
    add(
        "psql `COPY … TO STDOUT (FORMAT binary)` to /dev/null",
        timed(Command::new("sh").arg("-c").arg(format!(
            "psql -h 127.0.0.1 -U postgres -d sluice_bench -c 'COPY {table} TO STDOUT (FORMAT binary)' > /dev/null"
        )))?,
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    for (label, partitions) in [("1 partition", 1), ("partitions", cores)] {
        let _ = std::fs::remove_dir_all(&out);
        let j = job(
            &format!("pg-to-parquet-{partitions}"),
            &format!("{{connection: bench, table: {table}, partitions: {partitions}}}"),
            &format!(
                "plugin: file\n  grants: {{blob: {}}}\n  config: {{path: 'part-{{task}}-{{part}}.parquet', mode: overwrite}}",
                out.display()
            ),
        )?;
        if partitions == 1 {
            // Once untimed: the first run after a plugin build compiles the
            // components into the cache, which is not what is measured.
            timed_once(Command::new(&sluice).arg("run").arg(&j))?;
        }
        let label = if partitions == 1 {
            format!("**sluice** PostgreSQL → Parquet, {label}")
        } else {
            format!("sluice PostgreSQL → Parquet, {partitions} {label}")
        };
        add(&label, timed(Command::new(&sluice).arg("run").arg(&j))?);
        let mut n = 0;
        for f in std::fs::read_dir(&out)? {
            n += parquet_rows(&f?.path())?;
        }
        if n != rows {
            bail!("{label}: wrote {n} rows, expected {rows}");
        }
    }
    if python_has("connectorx") && python_has("pyarrow") {
        for partitions in [1, cores] {
            let script = format!(
                "import connectorx as cx\nt = cx.read_sql('{url}', 'SELECT * FROM {table}', return_type='arrow'{})\nassert t.num_rows == {rows}",
                if partitions > 1 {
                    format!(", partition_on='id', partition_num={partitions}")
                } else {
                    String::new()
                }
            );
            add(
                &format!(
                    "connectorx {} → Arrow in memory, {partitions} partition(s)",
                    "0.4"
                ),
                timed(Command::new("python3").arg("-c").arg(script))?,
            );
        }
    } else {
        println!(
            "\n(connectorx and pyarrow not installed: `pip install connectorx pyarrow` to compare)"
        );
    }
    if python_has("adbc_driver_postgresql") && python_has("pyarrow") {
        let script = format!(
            "import adbc_driver_postgresql.dbapi as d\nc = d.connect('{url}')\ncur = c.cursor()\ncur.execute('SELECT * FROM {table}')\nt = cur.fetch_arrow_table()\nassert t.num_rows == {rows}"
        );
        add(
            "ADBC PostgreSQL driver 1.x → Arrow in memory",
            timed(Command::new("python3").arg("-c").arg(script))?,
        );
    } else {
        println!(
            "\n(adbc-driver-postgresql not installed: `pip install adbc-driver-postgresql pyarrow` to compare)"
        );
    }
    print_table(
        &format!(
            "PostgreSQL extraction, {rows} rows ({:.0} MB as COPY text)",
            text_bytes as f64 / 1e6
        ),
        &results,
        2,
    );
    // PostgreSQL → PostgreSQL merge into an empty table, once (it is long).
    psql(&format!("DROP TABLE IF EXISTS {table}_copy"))?;
    let j = job(
        "pg-to-pg-merge",
        &format!("{{connection: bench, table: {table}, partitions: {cores}}}"),
        &format!(
            "plugin: postgres\n  grants: {{sql: [bench]}}\n  config: {{connection: bench, table: {table}_copy, mode: merge}}"
        ),
    )?;
    let merge = timed_once(Command::new(&sluice).arg("run").arg(&j))?;
    let copied = psql(&format!("SELECT count(*) FROM {table}_copy"))?;
    if copied != rows.to_string() {
        bail!("merge copied {copied} rows, expected {rows}");
    }
    let again = timed_once(Command::new(&sluice).arg("run").arg(&j))?;
    print_table(
        "PostgreSQL → PostgreSQL merge (binary COPY into a temporary table, then INSERT … ON CONFLICT)",
        &[
            Row {
                what: "into an empty table".into(),
                seconds: merge.0,
                rss_mb: Some(merge.1),
                rows,
                bytes: text_bytes,
            },
            Row {
                what: "again: every row an update".into(),
                seconds: again.0,
                rss_mb: Some(again.1),
                rows,
                bytes: text_bytes,
            },
        ],
        0,
    );
    Ok(())
}

/// `curl` against the benchmark's S3 server; fails on an HTTP error.
fn curl(args: &[&str]) -> Result<()> {
    run(Command::new("curl")
        .args(["-sSf", "-o", "/dev/null"])
        .args(args))
}

/// An object store a benchmark writes to and reads from, on loopback.
struct Remote {
    /// `S3` or `GCS`, for the tables.
    name: &'static str,
    /// What serves it, for the tables.
    server: &'static str,
    /// The job's settings section.
    settings: String,
    /// The bench bucket's URL (`s3://sluice-bench/`).
    url: String,
    /// The server's endpoint.
    endpoint: String,
    /// The environment `sluice` runs with.
    env: Vec<(&'static str, String)>,
    /// The plain HTTP URL of an object, to check it without Sluice.
    object_url: Box<dyn Fn(&str) -> String>,
    _server: Option<crate::services::ChildGuard>,
}

impl Remote {
    /// moto's S3 server.
    fn s3() -> Result<Remote> {
        let (endpoint, server) = crate::services::s3_server(5057, false)?;
        let bucket = "sluice-bench";
        let _ = curl(&["-X", "PUT", &format!("{endpoint}/{bucket}")]);
        let base = format!("{endpoint}/{bucket}");
        Ok(Remote {
            name: "S3",
            server: "moto server",
            settings: format!("s3: {{endpoint: '{endpoint}'}}\n"),
            url: format!("s3://{bucket}/"),
            endpoint: endpoint.clone(),
            env: [
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ]
            .map(|(k, v)| (k, v.to_string()))
            .to_vec(),
            object_url: Box::new(move |key| format!("{base}/{key}")),
            _server: server,
        })
    }

    /// fake-gcs-server.
    fn gcs() -> Result<Remote> {
        let (endpoint, server) = crate::services::gcs_server(5059)?;
        let bucket = "sluice-bench";
        let _ = curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &format!("{{\"name\": \"{bucket}\"}}"),
            &format!("{endpoint}/storage/v1/b?project=bench"),
        ]);
        let base = format!("{endpoint}/storage/v1/b/{bucket}/o");
        Ok(Remote {
            name: "GCS",
            server: "fake-gcs-server",
            settings: format!("gcs: {{endpoint: '{endpoint}', credentials: anonymous}}\n"),
            url: format!("gs://{bucket}/"),
            endpoint: endpoint.clone(),
            env: Vec::new(),
            object_url: Box::new(move |key| {
                format!("{base}/{}?alt=media", key.replace('/', "%2F"))
            }),
            _server: server,
        })
    }
}

/// Local files and an object store (S3 on a local moto server, GCS on
/// fake-gcs-server) side by side: the same CSV → Parquet job with the
/// input, the output or both in the store, and the peak RSS of moving one
/// big object each way.
fn object_store(work: &Path, rows: u64, object_gb: f64, remote: &Remote) -> Result<()> {
    let sluice = bin_dir().join("sluice");
    let csv = lineitem_csv(work, rows)?;
    let bytes = std::fs::metadata(&csv)?.len();
    let store = remote.name;
    let tag = store.to_ascii_lowercase();
    let job = |name: &str, source: &str, source_grant: &str, sink: &str, sink_grant: &str| {
        let text = format!(
            "{}source:\n  plugin: file\n  grants: {{blob: '{source_grant}'}}\n  config: {{paths: ['{source}'], batch_size: 65536}}\nsink:\n  plugin: file\n  grants: {{blob: '{sink_grant}'}}\n  config: {{path: '{sink}', mode: overwrite}}\n",
            remote.settings
        );
        std::fs::write(work.join(format!("{tag}-{name}.yaml")), text)
    };
    let url = remote.url.as_str();
    let csv_name = csv.file_name().unwrap().to_string_lossy().into_owned();
    let local_out = format!("{tag}-local.parquet");
    let read_out = format!("{tag}-read.parquet");
    job("local", &csv_name, "./data", &local_out, "./out")?;
    job("upload", &csv_name, "./data", "in/lineitem.csv", url)?;
    job("write", &csv_name, "./data", "out/lineitem.parquet", url)?;
    job("read", "in/lineitem.csv", url, &read_out, "./out")?;
    job("both", "in/lineitem.csv", url, "out/both.parquet", url)?;
    let sluice_run = |name: &str| {
        let mut cmd = Command::new(&sluice);
        cmd.current_dir(work)
            .args(["run", "--full-refresh", &format!("{tag}-{name}.yaml")])
            .envs(remote.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    };
    // Warm up (component cache, page cache) and put the CSV into the store.
    run(&mut sluice_run("local"))?;
    run(&mut sluice_run("upload"))?;
    let mut table = Vec::new();
    for (name, what) in [
        ("local", "local CSV → local Parquet (baseline)".to_string()),
        ("write", format!("local CSV → {store} Parquet")),
        ("read", format!("{store} CSV → local Parquet")),
        ("both", format!("{store} CSV → {store} Parquet")),
        ("upload", format!("local CSV → {store} CSV")),
    ] {
        let (s, m) = timed(&mut sluice_run(name))?;
        table.push(Row {
            what,
            seconds: s,
            rss_mb: Some(m),
            rows,
            bytes,
        });
    }
    check_rows(&work.join("out").join(&local_out), rows)?;
    check_rows(&work.join("out").join(&read_out), rows)?;
    for key in ["out/lineitem.parquet", "out/both.parquet"] {
        let local = work.join(format!("out/{tag}-download.parquet"));
        run(Command::new("curl")
            .args(["-sSf", "-o"])
            .arg(&local)
            .arg((remote.object_url)(key)))?;
        check_rows(&local, rows)?;
    }
    print_table(
        &format!(
            "CSV → Parquet (zstd) with {store} ({} on loopback), {rows} rows, {:.0} MB of CSV",
            remote.server,
            bytes as f64 / 1e6
        ),
        &table,
        0,
    );
    if object_gb > 0.0 {
        // About 80.7 bytes per generated row as CSV.
        let big_rows = (object_gb * 1e9 / 80.7) as u64;
        let big = lineitem_csv(work, big_rows)?;
        let big_bytes = std::fs::metadata(&big)?.len();
        let big_name = big.file_name().unwrap().to_string_lossy().into_owned();
        let big_out = format!("{tag}-big.parquet");
        job("big-up", &big_name, "./data", "big/lineitem.csv", url)?;
        job("big-down", "big/lineitem.csv", url, &big_out, "./out")?;
        let up = timed_once(&mut sluice_run("big-up"))?;
        let down = timed_once(&mut sluice_run("big-down"))?;
        check_rows(&work.join("out").join(&big_out), big_rows)?;
        print_table(
            &format!(
                "One {:.1} GB object on {store} (peak RSS stays flat: chunked upload, streamed ranged GET)",
                big_bytes as f64 / 1e9
            ),
            &[
                Row {
                    what: format!("local CSV → {store} CSV (chunked upload)"),
                    seconds: up.0,
                    rss_mb: Some(up.1),
                    rows: big_rows,
                    bytes: big_bytes,
                },
                Row {
                    what: format!("{store} CSV → local Parquet (streamed GET)"),
                    seconds: down.0,
                    rss_mb: Some(down.1),
                    rows: big_rows,
                    bytes: big_bytes,
                },
            ],
            0,
        );
        let _ = curl(&["-X", "DELETE", &(remote.object_url)("big/lineitem.csv")]);
    }
    Ok(())
}

/// `cargo xtask bench [files|filter|db|s3|gcs|all] [--rows N] [--object-gb G]`.
pub fn run_bench(args: &[String]) -> Result<()> {
    let mut which = "all".to_string();
    let mut rows: u64 = 5_000_000;
    let mut object_gb = 5.0;
    let mut tasks: Option<u64> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => rows = it.next().context("--rows N")?.replace('_', "").parse()?,
            "--object-gb" => object_gb = it.next().context("--object-gb G")?.parse()?,
            "--tasks" => tasks = Some(it.next().context("--tasks N")?.replace('_', "").parse()?),
            other => which = other.to_string(),
        }
    }
    crate::build_plugins()?;
    crate::build_host()?;
    let work = target_dir().join("bench");
    std::fs::create_dir_all(&work)?;
    println!(
        "## Benchmarks ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    match which.as_str() {
        "files" => files(&work, rows),
        "filter" => filter(),
        "db" => db(&work, rows),
        "s3" => object_store(&work, rows, object_gb, &Remote::s3()?),
        "gcs" => object_store(&work, rows, object_gb, &Remote::gcs()?),
        "bigquery" => bigquery::bigquery(&work, rows),
        "sdk" => sdk::sdk(&work, rows),
        "queue" => queue(tasks.unwrap_or(20_000)),
        "api" => api(tasks.unwrap_or(1_000_000)),
        "all" => {
            files(&work, rows)?;
            filter()
        }
        other => {
            bail!(
                "unknown benchmark {other}: use files, filter, db, s3, gcs, bigquery, sdk, queue, api or all"
            )
        }
    }
}

/// The REST API with a million historic tasks in PostgreSQL against the
/// same requests on a nearly empty store (two databases of its own).
fn api(tasks: u64) -> Result<()> {
    let url = crate::services::postgres_database("sluice_bench_api")?;
    println!("\n### REST API: {tasks} historic tasks vs an empty store (PostgreSQL)");
    run(Command::new(bench_bin()).args(["api", &url, &tasks.to_string()]))
}

/// The task queue on the local PostgreSQL: empty tasks leased and completed
/// by the real worker loop, against a bare SKIP LOCKED loop (the floor).
fn queue(tasks: u64) -> Result<()> {
    // A fresh database each time: the figures should not depend on history.
    let url = crate::services::postgres_database("sluice_bench_queue")?;
    run(crate::services::psql("postgres").args([
        "-c",
        "DROP DATABASE sluice_bench_queue WITH (FORCE)",
        "-c",
        "CREATE DATABASE sluice_bench_queue",
    ]))?;
    println!("\n### Task queue: {tasks} empty tasks, lease + complete (PostgreSQL)\n");
    println!(
        "| workers | bare SKIP LOCKED loop tasks/s | sluice tasks/s | sluice / bare | enqueue s | dispatch p50 ms | p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for workers in [1, 4] {
        let out = Command::new(bench_bin())
            .args(["queue", &url, &tasks.to_string(), &workers.to_string()])
            .output()
            .context("sluice-bench queue")?;
        if !out.status.success() {
            bail!(
                "sluice-bench queue: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let o: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let raw = o["raw"]["tasks_per_s"].as_f64().unwrap_or(0.0);
        let ours = o["sluice"]["tasks_per_s"].as_f64().unwrap_or(0.0);
        println!(
            "| {workers} | {raw:.0} | {ours:.0} | {:.2} | {:.2} | {} | {} |",
            ours / raw.max(1e-9),
            o["sluice"]["enqueue_s"].as_f64().unwrap_or(0.0),
            o["chain"]["p50_ms"],
            o["chain"]["p99_ms"],
        );
    }
    println!(
        "\nDispatch latency (ready → leased) is measured on a chain of 500 tasks, each \
         ready when the one before ends; in the bulk run every task is ready at once and \
         waits its turn."
    );
    Ok(())
}
