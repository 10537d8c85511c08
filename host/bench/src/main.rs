//! `sluice-bench`: the measurements behind `cargo xtask bench`.
//!
//! Each subcommand times the wasm path and a native baseline of the same
//! code in the same process, so the printed ratio is the cost of the sandbox:
//!
//! - `filter <plugins>`: the `select` filter through wasm vs the same crate
//!   compiled natively, over identical generated batches.
//! - `overhead <plugins>`: per-call cost of a one-row batch through a
//!   one-column predicate (wasm vs native).
//! - `csv-to-parquet <in.csv> <out.parquet>`: arrow-csv and the Parquet
//!   writer alone, no plugins, one thread: the native baseline for
//!   `sluice run` on the same file.
//! - `csv-decode <in.csv>`: decoding alone (no Parquet), Sluice's CSV
//!   reader beside arrow-csv's, best of three each.
//! - `generate-to-parquet <rows> <out.parquet>`: the generator compiled
//!   natively writing Parquet: the floor for the `generate` source.
//! - `api <postgres-url> <tasks>`: REST API latency with that many historic
//!   tasks beside a nearly empty store.
//! - `time <cmd…>`: run a command, print wall seconds and peak RSS as JSON.
//! - `count-parquet <file>`: rows in a Parquet file (outputs are verified).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_filter_select::{Config as SelectConfig, SelectTransformer};
use sluice_runtime::{Grants, Limits, Runtime, RuntimeConfig};
use sluice_sdk::Transformer as _;

mod api;
mod queue;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("filter") => filter(Path::new(arg(&args, 1)?), false),
        Some("overhead") => filter(Path::new(arg(&args, 1)?), true),
        Some("csv-to-parquet") => {
            csv_to_parquet(Path::new(arg(&args, 1)?), Path::new(arg(&args, 2)?))
        }
        Some("csv-decode") => csv_decode(Path::new(arg(&args, 1)?)),
        Some("generate-to-parquet") => {
            generate_to_parquet(arg(&args, 1)?.parse()?, Path::new(arg(&args, 2)?))
        }
        Some("time") => time(&args[1..]),
        Some("api") => api::api(arg(&args, 1)?, arg(&args, 2)?.parse()?),
        Some("queue") => queue::queue(
            arg(&args, 1)?,
            arg(&args, 2)?.parse()?,
            arg(&args, 3)?.parse()?,
        ),
        Some("count-parquet") => {
            let file = File::open(arg(&args, 1)?)?;
            let reader = parquet::file::reader::SerializedFileReader::new(file)
                .context("reading Parquet")?;
            let rows = parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows();
            println!("{rows}");
            Ok(())
        }
        _ => bail!(
            "usage: sluice-bench filter|overhead <plugin dir> | csv-to-parquet <in> <out> | generate-to-parquet <rows> <out> | time <cmd…> | queue <url> <tasks> <workers>"
        ),
    }
}

fn arg(args: &[String], i: usize) -> Result<&str> {
    args.get(i).map(String::as_str).context("missing argument")
}

fn parquet_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .build()
}

/// Batches of the generator's default lineitem-like schema.
fn lineitem(rows: u64, batch: u64) -> Result<Vec<RecordBatch>> {
    let config: sluice_source_generate::Config =
        serde_json::from_value(serde_json::json!({"rows": rows, "seed": 1}))?;
    let schema = sluice_source_generate::schema(&config);
    let mut out = Vec::new();
    let mut at = 0;
    while at < rows {
        let end = (at + batch).min(rows);
        out.push(
            sluice_source_generate::generate(&config, &schema, at, end)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        at = end;
    }
    Ok(out)
}

fn filter(plugins: &Path, overhead: bool) -> Result<()> {
    let (batches, config) = if overhead {
        // A predicate on one column, so every batch crosses into the
        // plugin (an identity select plans no call at all).
        (
            lineitem(20_000, 1)?,
            serde_json::json!({"where": "order_key >= 0"}),
        )
    } else {
        (
            lineitem(2_000_000, 65_536)?,
            serde_json::json!({
                "where": "price > 50000 and return_flag in ('alpha', 'bravo') and discount < 500.0",
                "drop": ["comment"],
                "cast": {"quantity": "float64"},
            }),
        )
    };
    let schema = batches[0].schema();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();

    // Native: the plugin crate's own code, compiled for the host.
    let native_config: SelectConfig = serde_json::from_value(config.clone())?;
    let mut native = SelectTransformer::new(native_config, schema.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Wasm: the same crate built to wasm32-wasip2, through the runtime.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::env::temp_dir().join("sluice-bench-cache")),
    })?;
    let plugin = runtime.load(&plugins.join("filter-select.wasm"))?;
    let mut wasm = plugin
        .filter(Arc::new(Grants::default()), Limits::default())?
        .into_transformer(&config.to_string(), &schema)?;

    // The best of many passes over the batches, native and wasm taking
    // turns: a transfer is long, so steady state is what matters (the first
    // wasm pass also grows the instance's memory), and taking turns means a
    // burst of load from elsewhere on the machine slows both, not one.
    const PASSES: usize = 15;
    let (mut native_time, mut wasm_time) = (Duration::MAX, Duration::MAX);
    let (mut native_rows, mut wasm_rows) = (0, 0);
    for _ in 0..PASSES {
        let started = Instant::now();
        native_rows = 0;
        for b in &batches {
            for out in native
                .process(b.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                native_rows += out.num_rows();
            }
        }
        native_time = native_time.min(started.elapsed());

        let started = Instant::now();
        wasm_rows = 0;
        for b in &batches {
            for out in wasm.process(b.clone())? {
                wasm_rows += out.num_rows();
            }
        }
        wasm_time = wasm_time.min(started.elapsed());
    }
    if native_rows != wasm_rows {
        bail!("wasm kept {wasm_rows} rows, native {native_rows}: the two disagree");
    }
    let calls = batches.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "batches": batches.len(),
            "rows_in": rows,
            "rows_out": wasm_rows,
            "native_s": native_time.as_secs_f64(),
            "wasm_s": wasm_time.as_secs_f64(),
            "ratio": wasm_time.as_secs_f64() / native_time.as_secs_f64().max(1e-9),
            "native_us_per_call": per_call(native_time, calls),
            "wasm_us_per_call": per_call(wasm_time, calls),
        })
    );
    Ok(())
}

fn per_call(d: Duration, calls: f64) -> f64 {
    d.as_secs_f64() * 1e6 / calls
}

fn csv_to_parquet(input: &Path, output: &Path) -> Result<()> {
    let started = Instant::now();
    let file = File::open(input).with_context(|| input.display().to_string())?;
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, _) = format.infer_schema(File::open(input)?, Some(1000))?;
    let schema = Arc::new(schema);
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(65_536)
        .build(std::io::BufReader::with_capacity(1 << 20, file))?;
    let mut writer = ArrowWriter::try_new(File::create(output)?, schema, Some(parquet_props()))?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch?;
        rows += batch.num_rows();
        writer.write(&batch)?;
    }
    writer.close()?;
    println!(
        "{}",
        serde_json::json!({"rows": rows, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

fn csv_decode(input: &Path) -> Result<()> {
    use std::sync::atomic::AtomicU64;
    let bytes = std::fs::metadata(input)?.len() as f64;
    let dir = input.parent().context("the file's directory")?;
    let name = input
        .file_name()
        .context("a file name")?
        .to_string_lossy()
        .into_owned();
    let store: Arc<dyn sluice_codec::ObjectStore> = Arc::new(sluice_codec::LocalStore::open(dir)?);
    let options: sluice_codec::DecodeOptions =
        serde_json::from_value(serde_json::json!({"format": "csv", "batch_size": 65_536}))?;
    let sluice = || -> Result<(usize, Duration)> {
        let started = Instant::now();
        let mut decoder = sluice_codec::Decoder::open(
            &store,
            &name,
            &options,
            Arc::new(AtomicU64::new(0)),
            Default::default(),
        )?;
        let mut rows = 0;
        while let Some(batch) = decoder.next_batch()? {
            rows += batch.num_rows();
        }
        Ok((rows, started.elapsed()))
    };
    let arrow_csv = || -> Result<(usize, Duration)> {
        let started = Instant::now();
        let format = arrow::csv::reader::Format::default().with_header(true);
        let (schema, _) = format.infer_schema(File::open(input)?, Some(1000))?;
        let reader = arrow::csv::ReaderBuilder::new(Arc::new(schema))
            .with_format(format)
            .with_batch_size(65_536)
            .build(std::io::BufReader::with_capacity(
                1 << 20,
                File::open(input)?,
            ))?;
        let mut rows = 0;
        for batch in reader {
            rows += batch?.num_rows();
        }
        Ok((rows, started.elapsed()))
    };
    let best = |run: &dyn Fn() -> Result<(usize, Duration)>| -> Result<(usize, Duration)> {
        let mut best = (0, Duration::MAX);
        for _ in 0..3 {
            let (rows, took) = run()?;
            best = (rows, best.1.min(took));
        }
        Ok(best)
    };
    let (rows, ours) = best(&sluice)?;
    let (arrow_rows, theirs) = best(&arrow_csv)?;
    if rows != arrow_rows {
        bail!("sluice read {rows} rows, arrow-csv {arrow_rows}");
    }
    let mbs = |d: Duration| bytes / 1e6 / d.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "sluice_s": ours.as_secs_f64(),
            "sluice_mb_s": mbs(ours),
            "arrow_csv_s": theirs.as_secs_f64(),
            "arrow_csv_mb_s": mbs(theirs),
        })
    );
    Ok(())
}

fn generate_to_parquet(rows: u64, output: &Path) -> Result<()> {
    let started = Instant::now();
    let config: sluice_source_generate::Config =
        serde_json::from_value(serde_json::json!({"rows": rows, "seed": 42}))?;
    let schema = sluice_source_generate::schema(&config);
    let mut writer =
        ArrowWriter::try_new(File::create(output)?, schema.clone(), Some(parquet_props()))?;
    let mut at = 0;
    while at < rows {
        let end = (at + 65_536).min(rows);
        let batch = sluice_source_generate::generate(&config, &schema, at, end)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        writer.write(&batch)?;
        at = end;
    }
    writer.close()?;
    println!(
        "{}",
        serde_json::json!({"rows": rows, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

/// Run a command; print its wall time and peak RSS (from `wait4`).
fn time(cmd: &[String]) -> Result<()> {
    let (program, args) = cmd.split_first().context("time: no command")?;
    let started = Instant::now();
    let child = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let (status, rss_kb) = wait_with_rusage(child.id() as libc::pid_t)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "peak_rss_mb": rss_kb as f64 / 1024.0, "ok": status == 0})
    );
    if status != 0 {
        bail!("{program} exited with {status}");
    }
    Ok(())
}

#[allow(unsafe_code)]
fn wait_with_rusage(pid: libc::pid_t) -> Result<(i32, i64)> {
    let mut status = 0;
    // SAFETY: plain syscall on a child we spawned; both out-pointers are
    // valid for the duration of the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, usage.ru_maxrss))
}
