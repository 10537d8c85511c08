//! What the CLI prints: summaries, progress, plugin and stream listings.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluice_api::{AttemptView, ScheduleView, TaskView};
use sluice_pipeline::{Progress, Summary};
use sluice_runtime::{Plugin, StreamInfo};
use sluice_store::RunRecord;

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn per_second(n: f64, elapsed: Duration) -> f64 {
    n / elapsed.as_secs_f64().max(1e-9)
}

/// The human summary of a run, on stderr-free stdout.
pub fn print_summary(job: &str, s: &Summary) {
    println!(
        "{job}: {} rows in {:.2} s ({:.0} rows/s); read {:.1} MB ({:.1} MB/s), wrote {:.1} MB; {} task(s)",
        s.rows,
        s.elapsed.as_secs_f64(),
        per_second(s.rows as f64, s.elapsed),
        mb(s.bytes_in),
        per_second(mb(s.bytes_in), s.elapsed),
        mb(s.bytes_out),
        s.tasks,
    );
    for o in &s.outputs {
        println!("  -> {o}");
    }
    if s.rejected > 0 {
        println!(
            "  rejected {} invalid row(s), kept in: {}",
            s.rejected,
            s.reject_files.join(", ")
        );
    }
    let plugins: Vec<String> = s
        .plugins
        .iter()
        .map(|(name, r)| {
            format!(
                "{name} ({} in {} ms)",
                if r.from_cache { "cached" } else { "compiled" },
                r.elapsed.as_millis()
            )
        })
        .collect();
    println!("  plugins: {}", plugins.join(", "));
    for notice in &s.notices {
        println!("  note: {notice}");
    }
}

/// The summary as one JSON object (for scripts and tests).
pub fn summary_json(job: &str, run: i64, s: &Summary) -> String {
    serde_json::json!({
        "job": job,
        "run": run,
        "rows": s.rows,
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "seconds": s.elapsed.as_secs_f64(),
        "tasks": s.tasks,
        "streams": s.streams,
        "outputs": s.outputs,
        "rejected": s.rejected,
        "reject_files": s.reject_files,
        "notices": s.notices,
        "plugins": s.plugins.iter().map(|(name, r)| serde_json::json!({
            "name": name,
            "from_cache": r.from_cache,
            "load_ms": r.elapsed.as_secs_f64() * 1000.0,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

/// One line per plugin.
pub fn print_plugin(p: &Plugin) {
    let i = p.info();
    println!(
        "{:<7} {:<10} {:<8} {}  [{}]  sluice:plugin@{}  ({})",
        i.kind.as_str(),
        i.name,
        i.version,
        i.description,
        i.capabilities.join(", "),
        p.wit_version(),
        p.path().display()
    );
}

/// A stream and its schema.
pub fn print_stream(s: &StreamInfo) {
    println!("stream {}", s.name);
    if !s.primary_key.is_empty() {
        println!("  primary key: {}", s.primary_key.join(", "));
    }
    if !s.cursor_fields.is_empty() {
        println!("  cursor: {}", s.cursor_fields.join(", "));
    }
    match &s.schema {
        Some(schema) => {
            for f in schema.fields() {
                println!(
                    "  {:<24} {}{}",
                    f.name(),
                    f.data_type(),
                    if f.is_nullable() { "" } else { " not null" }
                );
            }
        }
        None => println!("  (schema known after reading)"),
    }
}

/// Recent runs as a table.
pub fn print_runs(runs: &[RunRecord]) {
    println!(
        "{:>5}  {:<20} {:<10} {:>12} {:<24} error",
        "run", "job", "status", "rows", "started"
    );
    for r in runs {
        println!(
            "{:>5}  {:<20} {:<10} {:>12} {:<24} {}",
            r.id,
            r.job,
            r.status.as_str(),
            r.rows,
            r.started_at,
            r.error.as_deref().unwrap_or("")
        );
    }
}

/// Shows progress while a run goes: a live bar on a terminal, a log line
/// every few seconds otherwise.
pub struct ProgressReporter {
    /// Dropped to stop: the thread wakes at once instead of finishing a
    /// sleep, so a short run does not wait for the next tick to end.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressReporter {
    /// Start reporting `progress`.
    pub fn start(progress: Arc<Progress>) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let tty = std::io::stderr().is_terminal();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let bar = tty.then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            let mut last_log = Instant::now();
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(100))
            {
                let (rows, bytes, done, total) = progress.snapshot();
                let elapsed = started.elapsed();
                let line = format!(
                    "{rows} rows, {:.1} MB read, {:.0} rows/s, {:.1} MB/s, tasks {done}/{total}",
                    mb(bytes),
                    per_second(rows as f64, elapsed),
                    per_second(mb(bytes), elapsed),
                );
                match &bar {
                    Some(bar) => bar.set_message(line),
                    None if last_log.elapsed() >= Duration::from_secs(5) => {
                        tracing::info!("{line}");
                        last_log = Instant::now();
                    }
                    None => {}
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        ProgressReporter {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stop and clear the bar.
    pub fn stop(mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn took(ms: Option<i64>) -> String {
    ms.map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn or_dash(text: Option<&str>) -> &str {
    text.unwrap_or("-")
}

/// An attempt's tasks as a table: one line each, what a transfer moved and
/// the error of a task that failed under their task.
///
/// Local commands and `--server` print the same table: both hand over the
/// API's views, built from the store's records or read from the server.
pub fn print_tasks(tasks: &[TaskView]) {
    println!(
        "{:>6}  {:<10} {:<9} {:>7} {:>8}  NAME",
        "ID", "STATE", "KIND", "RETRIES", "TOOK"
    );
    for t in tasks {
        println!(
            "{:>6}  {:<10} {:<9} {:>7} {:>8}  {}",
            t.id,
            t.state,
            t.kind,
            t.retries,
            took(t.duration_ms),
            t.name
        );
        if let Some(summary) = &t.summary {
            println!("{:>34}  {summary}", "");
        }
        if let Some(e) = t.error.as_ref().filter(|_| t.state != "succeeded") {
            println!("{:>34}  error: {e}", "");
        }
    }
}

/// The line under a task table: which attempt, and how it ended.
pub fn print_attempt_status(a: &AttemptView) {
    println!(
        "attempt {} of {}/{}: {}",
        a.id, a.project, a.workflow, a.status
    );
}

/// Attempts as a table, newest first; `next` is where the next page
/// starts, when there is one.
pub fn print_attempts(attempts: &[AttemptView], next: Option<&str>) {
    println!(
        "{:>6}  {:<10} {:<24} {:<24} {:>8}  PROJECT/WORKFLOW",
        "ID", "STATUS", "SESSION", "CREATED", "TOOK"
    );
    for a in attempts {
        println!(
            "{:>6}  {:<10} {:<24} {:<24} {:>8}  {}/{}",
            a.id,
            a.status,
            a.session_time,
            a.created_at,
            took(a.duration_ms),
            a.project,
            a.workflow
        );
    }
    if let Some(next) = next {
        println!("(more: --before {next})");
    }
}

/// Schedules with their next run time.
pub fn print_schedules(schedules: &[ScheduleView]) {
    println!(
        "{:<8} {:<24} {:<24}  PROJECT/WORKFLOW  SPEC",
        "ENABLED", "NEXT RUN", "LAST SESSION"
    );
    for s in schedules {
        println!(
            "{:<8} {:<24} {:<24}  {}/{}  {}",
            if s.enabled { "yes" } else { "no" },
            or_dash(s.next_run_time.as_deref()),
            or_dash(s.last_session_time.as_deref()),
            s.project,
            s.workflow,
            s.spec
        );
    }
}
