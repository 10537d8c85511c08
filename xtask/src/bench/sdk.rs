//! `cargo xtask bench sdk`: the same synthetic source (8 columns) written
//! in Rust, Python and JavaScript, each → Parquet in one run; a row filter
//! written in Rust, Python and TypeScript on the same batches; and what a
//! Python or JavaScript component costs to build, to compile on first
//! load, and to load from the cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use super::{Row, check_rows, print_table, timed_once};
use crate::{bin_dir, root};

fn sluice() -> Command {
    Command::new(bin_dir().join("sluice"))
}

/// Build a Python or JavaScript plugin with `sluice plugin build`;
/// (file, seconds).
fn build_plugin(work: &Path, rel: &str) -> Result<(PathBuf, f64)> {
    let name = Path::new(rel)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = work.join(format!("{name}.wasm"));
    let started = Instant::now();
    let done = sluice()
        .args(["plugin", "build"])
        .arg(root().join(rel))
        .arg("--out")
        .arg(&out)
        .output()?;
    if !done.status.success() {
        bail!(
            "sluice plugin build {rel}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    Ok((out, started.elapsed().as_secs_f64()))
}

/// Seconds of one `sluice run` of `job` with the component cache at `cache`.
fn run_once(work: &Path, job: &str, cache: &Path) -> Result<f64> {
    let started = Instant::now();
    let out = sluice()
        .current_dir(work)
        .arg("--cache-dir")
        .arg(cache)
        .args(["run", "--full-refresh", job])
        .output()?;
    if !out.status.success() {
        bail!("sluice run {job}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// A job reading `source` (a plugin and its config) into one Parquet file.
fn job(work: &Path, name: &str, source: &str, filter: Option<&str>) -> Result<String> {
    let filter = filter
        .map(|f| format!("filters:\n  - {f}\n"))
        .unwrap_or_default();
    let file = format!("sdk-{name}.yaml");
    std::fs::write(
        work.join(&file),
        format!(
            "name: sdk-{name}\nsource:\n  {source}\n{filter}sink:\n  plugin: file\n  grants: {{blob: ./out/sdk}}\n  config: {{path: {name}.parquet, mode: overwrite}}\n"
        ),
    )?;
    Ok(file)
}

/// One job to time: its name, source, filter and the rows it must write.
struct Job<'a> {
    name: String,
    source: String,
    filter: Option<&'a str>,
    rows: u64,
}

/// Rounds of runs of every job, taken in turn.
const ROUNDS: usize = 5;

/// Median seconds and peak RSS of each job (after one run that warms the
/// component cache), its output's rows checked. The jobs run in turn,
/// round after round, so a slow spell of a shared machine falls on all of
/// them instead of on one job's three runs.
fn time_jobs(work: &Path, jobs: &[Job]) -> Result<Vec<(f64, f64)>> {
    let mut files = Vec::new();
    for j in jobs {
        let file = job(work, &j.name, &j.source, j.filter)?;
        run_once(work, &file, &work.join("cache"))?;
        files.push(file);
    }
    let mut seconds = vec![Vec::new(); jobs.len()];
    let mut rss = vec![0.0_f64; jobs.len()];
    for _ in 0..ROUNDS {
        for (i, file) in files.iter().enumerate() {
            let (s, m) = timed_once(
                sluice()
                    .current_dir(work)
                    .arg("--cache-dir")
                    .arg(work.join("cache"))
                    .args(["run", "--full-refresh", file]),
            )?;
            seconds[i].push(s);
            rss[i] = rss[i].max(m);
        }
    }
    for j in jobs {
        check_rows(&work.join(format!("out/sdk/{}.parquet", j.name)), j.rows)?;
    }
    Ok(seconds
        .into_iter()
        .zip(rss)
        .map(|(mut s, m)| {
            s.sort_by(f64::total_cmp);
            (s[s.len() / 2], m)
        })
        .collect())
}

/// `rows` rows of (`id`, `email`), one in ten at `@example.com`.
fn emails_csv(work: &Path, rows: u64) -> Result<PathBuf> {
    let csv = work.join(format!("data/emails-{rows}.csv"));
    if !csv.is_file() {
        std::fs::create_dir_all(work.join("data"))?;
        let mut text = String::from("id,email\n");
        for i in 0..rows {
            let domain = if i % 10 == 0 {
                "example.com"
            } else {
                "corp.example.jp"
            };
            text.push_str(&format!("{i},user{i}@{domain}\n"));
        }
        std::fs::write(&csv, text)?;
    }
    Ok(csv)
}

pub fn sdk(work: &Path, rows: u64) -> Result<()> {
    let work = work.join("sdk");
    std::fs::create_dir_all(work.join("out/sdk"))?;
    let test_plugins = bin_dir().join("test-plugins");
    let (py_source, py_source_build) = build_plugin(&work, "tests/sdk-plugins/py-synthetic")?;
    let (py_mask, py_mask_build) = build_plugin(&work, "tests/sdk-plugins/py-mask")?;
    let (js_source, js_source_build) = build_plugin(&work, "tests/sdk-plugins/js-synthetic")?;
    let (ts_mask, ts_mask_build) = build_plugin(&work, "examples/plugins/ts-mask")?;
    let rust_source = test_plugins.join("source-synthetic.wasm");
    let rust_mask = test_plugins.join("filter-mask.wasm");

    // Loading: the first load compiles the component (an empty cache),
    // later ones read it back from the cache.
    println!("\n### Components: size, build, first load (compile) and cached load\n");
    println!("| component | MB | build s | first run, 1 row, s | cached run, 1 row, s |");
    println!("|---|---:|---:|---:|---:|");
    for (what, file, config, build) in [
        ("Rust synthetic source", &rust_source, "{rows: 1}", None),
        (
            "Python synthetic source",
            &py_source,
            "{rows: 1}",
            Some(py_source_build),
        ),
        (
            "JavaScript synthetic source",
            &js_source,
            "{rows: 1}",
            Some(js_source_build),
        ),
    ] {
        let name = what.split_whitespace().next().unwrap().to_lowercase();
        let job = job(
            &work,
            &format!("load-{name}"),
            &format!("plugin: {}\n  config: {config}", file.display()),
            None,
        )?;
        let cold_cache = work.join(format!("cold-cache-{name}"));
        let _ = std::fs::remove_dir_all(&cold_cache);
        let cold = run_once(&work, &job, &cold_cache)?;
        let mut warm: Vec<f64> = (0..3)
            .map(|_| run_once(&work, &job, &cold_cache))
            .collect::<Result<_>>()?;
        warm.sort_by(f64::total_cmp);
        println!(
            "| {what} | {:.1} | {} | {cold:.2} | {:.2} |",
            std::fs::metadata(file)?.len() as f64 / 1e6,
            build
                .map(|b| format!("{b:.1}"))
                .unwrap_or_else(|| "-".into()),
            warm[1]
        );
    }

    println!(
        "\n(The filters below built in {py_mask_build:.1} s (`py-mask`, Python) and {ts_mask_build:.1} s (`ts-mask`, TypeScript).)"
    );

    // Throughput: the same rows from each source, → Parquet.
    let sources = [
        (
            "Rust (arrow builders)",
            &rust_source,
            format!("{{rows: {rows}}}"),
        ),
        (
            "Python (dict rows → plain columns)",
            &py_source,
            format!("{{rows: {rows}}}"),
        ),
        (
            "Python (sluice.columns → plain columns)",
            &py_source,
            format!("{{rows: {rows}, as_columns: true}}"),
        ),
        (
            "JavaScript (row objects → JSON)",
            &js_source,
            format!("{{rows: {rows}}}"),
        ),
        (
            "JavaScript (an array of row objects a page → JSON)",
            &js_source,
            format!("{{rows: {rows}, as_arrays: true}}"),
        ),
        (
            "JavaScript (columns(...) → JSON)",
            &js_source,
            format!("{{rows: {rows}, as_columns: true}}"),
        ),
    ];
    let jobs: Vec<Job> = sources
        .iter()
        .enumerate()
        .map(|(i, (_, file, config))| Job {
            name: format!("source-{i}"),
            source: format!("plugin: {}\n  config: {config}", file.display()),
            filter: None,
            rows,
        })
        .collect();
    let table: Vec<Row> = sources
        .iter()
        .zip(time_jobs(&work, &jobs)?)
        .map(|((what, _, _), (seconds, rss))| Row {
            what: (*what).into(),
            seconds,
            rss_mb: Some(rss),
            rows,
            bytes: 0,
        })
        .collect();
    print_table(
        &format!("Synthetic source, {rows} rows × 8 columns → Parquet"),
        &table,
        0,
    );

    // A row filter: the job's time with the filter less its time without.
    let csv = emails_csv(&work, rows)?;
    let source = format!(
        "plugin: file\n  grants: {{blob: {}}}\n  config: {{paths: [{}]}}",
        csv.parent().unwrap().display(),
        csv.file_name().unwrap().to_string_lossy()
    );
    let kept = rows - rows.div_ceil(10);
    let filters = [
        ("filter-none", None, rows),
        (
            "filter-rust",
            Some(format!("plugin: {}", rust_mask.display())),
            kept,
        ),
        (
            "filter-python",
            Some(format!("plugin: {}", py_mask.display())),
            kept,
        ),
        (
            "filter-python-columnwise",
            Some(format!(
                "plugin: {}\n    config: {{columnwise: true}}",
                py_mask.display()
            )),
            kept,
        ),
        (
            "filter-typescript",
            Some(format!("plugin: {}", ts_mask.display())),
            kept,
        ),
    ];
    let jobs: Vec<Job> = filters
        .iter()
        .map(|(name, filter, expect)| Job {
            name: (*name).into(),
            source: source.clone(),
            filter: filter.as_deref(),
            rows: *expect,
        })
        .collect();
    let times: Vec<(&str, f64, f64)> = filters
        .iter()
        .zip(time_jobs(&work, &jobs)?)
        .map(|((name, _, _), (seconds, rss))| (*name, seconds, rss))
        .collect();
    // Whole jobs: the filter runs in its own pipeline stage beside the
    // source and the sink, so its own time does not subtract cleanly.
    let (none, rust) = (times[0].1, times[1].1);
    println!(
        "\n### Row filter (mask e-mails, drop test accounts), {rows} rows: CSV → filter → Parquet\n"
    );
    println!("| job | seconds | peak RSS MB | vs no filter | vs the Rust filter's job |");
    println!("|---|---:|---:|---:|---:|");
    for (name, seconds, rss) in &times {
        println!(
            "| {name} | {seconds:.2} | {rss:.0} | {:.2}× | {:.2}× |",
            seconds / none,
            seconds / rust
        );
    }
    Ok(())
}
