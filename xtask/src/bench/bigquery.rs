//! `cargo xtask bench bigquery`: PostgreSQL lineitem → the BigQuery
//! emulator, append and merge, through GCS staging and by direct upload,
//! beside dlt's BigQuery destination pointed at the same emulator in the
//! same run. Rows are counted in the target with `COUNT(*)`; where the time
//! goes shows in the steps measured on their own (read and encode to a
//! local file, then to GCS, then the load jobs on top).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Remote, Row, lineitem_table, print_table, timed};
use crate::{bin_dir, run, services};

const PROJECT: &str = "test-project";
const DLT_SCRIPT: &str = include_str!("dlt_bigquery.py");
const READ_SCRIPT: &str = include_str!("bq_read.py");

/// dlt with its BigQuery and Parquet extras, in a virtualenv of its own.
fn dlt_python() -> Result<std::path::PathBuf> {
    let venv = crate::home_cache("venvs/dlt");
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if !ready.is_file() {
        eprintln!("installing dlt from PyPI into {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "-q",
            "dlt[parquet,bigquery]==1.31.0",
            "sqlalchemy>=2",
            "psycopg2-binary",
        ]))?;
        std::fs::write(&ready, "")?;
    }
    Ok(python)
}

/// `SELECT COUNT(*)` of a table on the emulator.
fn count(endpoint: &str, table: &str) -> Result<u64> {
    let body = serde_json::json!({
        "query": format!("SELECT COUNT(*) FROM `{PROJECT}.{table}`"),
        "useLegacySql": false,
    });
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(body.to_string())
        .arg(format!("{endpoint}/bigquery/v2/projects/{PROJECT}/queries"))
        .output()?;
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("counting {table}: {}", String::from_utf8_lossy(&out.stdout)))?;
    reply["rows"][0]["f"][0]["v"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("counting {table}: {reply}"))
}

fn check(endpoint: &str, table: &str, expected: u64) -> Result<()> {
    let n = count(endpoint, table)?;
    if n != expected {
        bail!("{table} has {n} rows, not {expected}");
    }
    Ok(())
}

/// A service-account key with a fresh RSA key (dlt insists on one; the
/// emulator is reached without credentials).
fn key_pem() -> Result<String> {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()?;
    Ok(String::from_utf8(out.stdout)?)
}

pub(super) fn bigquery(work: &Path, rows: u64) -> Result<()> {
    let url = services::postgres_database("sluice_bench")?;
    let table = lineitem_table(rows)?;
    let gcs = Remote::gcs()?;
    let (bq, _server) = services::bigquery_server(5061, &gcs.endpoint)?;
    let sluice = bin_dir().join("sluice");
    let dir = work.join("bigquery");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let source = format!(
        "connections:\n  bench: {{url: \"{url}\"}}\nsource:\n  plugin: postgres\n  grants: {{sql: [bench]}}\n  config: {{connection: bench, table: {table}, partitions: 2}}\n"
    );
    let job = |name: &str, sink: &str| {
        sluice_run(
            &dir,
            &sluice,
            name,
            &format!("{}{source}sink:\n  {sink}\n", gcs.settings),
        )
    };
    let bigquery_sink = |dataset: &str, mode: &str, staged: bool| {
        let blob = if staged {
            format!(", blob: '{}stage/'", gcs.url)
        } else {
            String::new()
        };
        format!(
            "plugin: bigquery\n  grants: {{{}{blob}}}\n  config: {{dataset: {dataset}, table: lineitem, mode: {mode}}}",
            bigquery_grant(dataset, &bq)
        )
    };
    let mut results = Vec::new();
    let mut add = |what: &str, timing: (f64, f64)| results.push(timed_row(what, timing, rows));
    // Where the time goes: read and encode, then the upload on top.
    add(
        "sluice: PostgreSQL → local Parquet (read + encode)",
        timed(&mut job(
            "local",
            "plugin: file\n  grants: {blob: ./out}\n  config: {path: 'part-{task}.parquet', compression: zstd, mode: overwrite}",
        )?)?,
    );
    add(
        "sluice: PostgreSQL → GCS Parquet (+ upload)",
        timed(&mut job(
            "gcs",
            &format!(
                "plugin: file\n  grants: {{blob: '{}lake/'}}\n  config: {{path: 'part-{{task}}.parquet', compression: zstd, mode: overwrite}}",
                gcs.url
            ),
        )?)?,
    );
    // Each measured three times: appends add the rows each time, merges
    // leave them as they are.
    let runs: [(&str, &str, &str, bool, u64); 3] = [
        ("via GCS, append", "bq_gcs_append", "append", true, 3),
        (
            "direct upload, append",
            "bq_upload_append",
            "append",
            false,
            3,
        ),
        ("via GCS, merge", "bq_gcs_merge", "merge", true, 1),
    ];
    for (label, dataset, mode, staged, times) in runs {
        let mut cmd = job(dataset, &bigquery_sink(dataset, mode, staged))?;
        add(
            &format!("sluice: PostgreSQL → BigQuery {label}"),
            timed(&mut cmd)?,
        );
        check(&bq, &format!("{dataset}.lineitem"), rows * times)?;
    }
    let python = dlt_python()?;
    let script = dir.join("dlt_bigquery.py");
    std::fs::write(&script, DLT_SCRIPT)?;
    let key = key_pem()?;
    let pg_sqlalchemy = url.replacen("postgres://", "postgresql+psycopg2://", 1);
    for (label, dataset, disposition, times) in [
        ("append", "dlt_append", "append", 3),
        ("merge", "dlt_merge", "merge", 1),
    ] {
        let mut cmd = Command::new(&python);
        cmd.current_dir(&dir)
            .arg(&script)
            .args([pg_sqlalchemy.as_str(), &table, dataset, disposition])
            .env("BQ_ENDPOINT", &bq)
            .env("RUNTIME__DLTHUB_TELEMETRY", "false")
            // The emulator takes no gzip uploads.
            .env("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "true")
            .env("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", PROJECT)
            .env(
                "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL",
                "bench@test-project.iam.gserviceaccount.com",
            )
            .env("DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY", &key);
        add(
            &format!("dlt 1.31 (pyarrow backend, Parquet), {label}"),
            timed(&mut cmd)?,
        );
        check(&bq, &format!("{dataset}.{table}"), rows * times)?;
    }
    let reference = results.len() - 2;
    print_table(
        &format!(
            "PostgreSQL → BigQuery ({rows} lineitem rows, 2 partitions; local-bigquery and fake-gcs-server on loopback)"
        ),
        &results,
        reference,
    );
    println!(
        "\nEvery target counted with `SELECT COUNT(*)` on the emulator (appends: 3 runs' rows). The load jobs' share is the BigQuery row minus the GCS Parquet row."
    );
    read_back(&dir, &sluice, &gcs, &bq, &python, rows)
}

/// The other direction: the first (at most) 500,000 rows of the merged
/// table read into a local Parquet file by the bigquery source, from the
/// query's result and by an export through GCS, beside a plain
/// google-cloud-bigquery client paging through the same result. Each
/// output's rows are counted. The slice keeps the emulator's share small:
/// it sorts the whole result for every page it serves.
fn read_back(
    dir: &Path,
    sluice: &Path,
    gcs: &Remote,
    bq: &str,
    python: &Path,
    rows: u64,
) -> Result<()> {
    let rows = rows.min(500_000);
    let query = format!("SELECT * FROM bq_gcs_merge.lineitem LIMIT {rows}");
    let mut results = Vec::new();
    for (label, read, blob) in [
        ("query result pages", "results", String::new()),
        (
            "export to GCS as Parquet",
            "export",
            format!(", blob: '{}read/'", gcs.url),
        ),
    ] {
        let name = format!("read-{read}");
        let mut cmd = sluice_run(
            dir,
            sluice,
            &name,
            &format!(
                "{}source:\n  plugin: bigquery\n  grants: {{{}{blob}}}\n  config: {{dataset: bq_gcs_merge, query: '{query}', read: {read}}}\nsink:\n  plugin: file\n  grants: {{blob: ./{name}}}\n  config: {{path: 'part.parquet', compression: zstd, mode: overwrite}}\n",
                gcs.settings,
                bigquery_grant("bq_gcs_merge", bq)
            ),
        )?;
        let timing = timed(&mut cmd)?;
        super::check_rows(&dir.join(&name).join("part.parquet"), rows)?;
        results.push(timed_row(
            &format!("sluice: BigQuery → local Parquet, {label}"),
            timing,
            rows,
        ));
    }
    let script = dir.join("bq_read.py");
    std::fs::write(&script, READ_SCRIPT)?;
    let out = dir.join("client.parquet");
    let mut cmd = Command::new(python);
    cmd.current_dir(dir)
        .arg(&script)
        .arg(&query)
        .arg(&out)
        .env("BQ_ENDPOINT", bq);
    let timing = timed(&mut cmd)?;
    super::check_rows(&out, rows)?;
    results.push(timed_row(
        "google-cloud-bigquery (REST pages, to_arrow_iterable) → pyarrow Parquet",
        timing,
        rows,
    ));
    print_table(
        &format!("BigQuery → local Parquet ({rows} lineitem rows, the emulator on loopback)"),
        &results,
        2,
    );
    Ok(())
}

/// `sluice run --full-refresh` of the job `yaml`, written to `<name>.yaml`
/// in `dir` and run from there.
fn sluice_run(dir: &Path, sluice: &Path, name: &str, yaml: &str) -> Result<Command> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml)?;
    let mut cmd = Command::new(sluice);
    cmd.current_dir(dir)
        .args(["run", "--full-refresh"])
        .arg(&path);
    Ok(cmd)
}

/// The `bigquery:` grant of one dataset on the emulator, for the sink and
/// the source alike.
fn bigquery_grant(dataset: &str, endpoint: &str) -> String {
    format!(
        "bigquery: {{project: {PROJECT}, datasets: [{dataset}], endpoint: '{endpoint}', credentials: anonymous}}"
    )
}

/// A table row of `rows` rows from `timed`'s (seconds, peak RSS MB).
fn timed_row(what: &str, (seconds, rss): (f64, f64), rows: u64) -> Row {
    Row {
        what: what.into(),
        seconds,
        rss_mb: Some(rss),
        rows,
        bytes: 0,
    }
}
