//! Running one leased task: a transfer, an HTTP request, a shell command,
//! or a line for the log.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sluice_pipeline::{Job, PluginDirs, Progress, Transfer};
use sluice_runtime::Runtime;
use sluice_store::{LeasedTask, Outcome, RunStatus, Store};
use sluice_workflow::Params;
use tokio::sync::watch;

use crate::metrics::WorkerMetrics;
use crate::state::StoreState;

/// Why a running task is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    Run,
    /// The worker is shutting down: checkpoint and give the task back.
    Release,
    /// The attempt was killed.
    Cancel,
}

/// Runs tasks; one per worker process.
pub struct Executor {
    store: Store,
    runtime: Arc<Runtime>,
    plugins: PluginDirs,
    allow_sh: bool,
    http: reqwest::Client,
    metrics: WorkerMetrics,
}

/// Where a task runs and what it may know.
pub struct TaskContext {
    /// The project's files on this machine.
    pub root: PathBuf,
    /// The project's name.
    pub project: String,
    /// The project's secrets (name, value).
    pub secrets: Vec<(String, String)>,
    /// The task's log.
    pub log: TaskLog,
    /// The worker holding the task's lease.
    pub worker: String,
}

/// A task's log file; secret values are masked in every line.
#[derive(Clone)]
pub struct TaskLog {
    file: Option<Arc<Mutex<std::fs::File>>>,
    masks: Arc<Vec<String>>,
}

impl TaskLog {
    /// A log at `path` (None: lines go to tracing only).
    pub fn open(path: Option<PathBuf>, masks: Vec<String>) -> TaskLog {
        let file = path.as_ref().and_then(|p| {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
                .map(|f| Arc::new(Mutex::new(f)))
        });
        TaskLog {
            file,
            masks: Arc::new(masks.into_iter().filter(|m| m.len() >= 3).collect()),
        }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for m in self.masks.iter() {
            out = out.replace(m.as_str(), "***");
        }
        out
    }

    /// Append a line.
    pub fn line(&self, text: &str) {
        let text = self.mask(text);
        tracing::debug!(target: "sluice::task", "{text}");
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                f,
                "{} {text}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
            );
        }
    }
}

/// Put the project's secret values in place of `${secret:NAME}`.
pub(crate) fn fill_secrets(text: &str, ctx: &TaskContext) -> Result<String, String> {
    let mut out = text.to_string();
    while let Some(start) = out.find("${secret:") {
        let end = out[start..].find('}').ok_or("unclosed ${secret:")? + start;
        let name = out[start + 9..end].trim().to_string();
        let value = ctx
            .secrets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no secret {name} in project {}", ctx.project))?;
        out.replace_range(start..=end, &value);
    }
    Ok(out)
}

pub(crate) fn failed(error: impl Into<String>, retryable: bool) -> Outcome {
    Outcome::Failed {
        error: error.into(),
        retryable,
    }
}

impl Executor {
    /// An executor; `allow_sh` turns on `sh:` tasks.
    pub fn new(
        store: Store,
        runtime: Arc<Runtime>,
        plugins: PluginDirs,
        allow_sh: bool,
    ) -> Executor {
        let http = reqwest::Client::builder()
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Executor {
            store,
            runtime,
            plugins,
            allow_sh,
            http,
            metrics: WorkerMetrics::default(),
        }
    }

    /// What the tasks run here add to the fleet's metrics, not yet flushed.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// Add what gathered (and the plugins' call times) to the store.
    pub async fn flush_metrics(&self) {
        self.metrics.flush(&self.store, &self.runtime).await;
    }

    /// Run a task to its outcome, stopping early when `stop` says so.
    pub async fn run(
        &self,
        task: &LeasedTask,
        ctx: &TaskContext,
        stop: watch::Receiver<Stop>,
    ) -> Outcome {
        let config: Value = match serde_json::from_str(&task.config) {
            Ok(v) => v,
            Err(e) => return failed(format!("bad stored task config: {e}"), false),
        };
        let params: Params = serde_json::from_str(&task.params).unwrap_or_default();
        ctx.log.line(&format!(
            "task {} ({}) lease {} on {}",
            task.name, task.kind, task.lease, ctx.project
        ));
        let outcome = match task.kind.as_str() {
            "echo" => {
                let message = match &config["message"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                ctx.log.line(&message);
                Outcome::Succeeded { summary: None }
            }
            "transfer" => self.transfer(task, &config, &params, ctx, stop).await,
            "sh" => self.sh(&config, &params, ctx, stop).await,
            "http" => self.http(&config, ctx, stop).await,
            sluice_workflow::ROW_LOOP_KIND => {
                crate::row_loop::run(&self.store, task, &config, &params, ctx).await
            }
            "group" | "skip" => Outcome::Succeeded { summary: None },
            other => failed(format!("this worker cannot run {other} tasks"), false),
        };
        match &outcome {
            Outcome::Succeeded { .. } => ctx.log.line("succeeded"),
            Outcome::Failed { error, .. } => ctx.log.line(&format!("failed: {error}")),
            Outcome::Released => ctx.log.line("released: the worker is shutting down"),
            Outcome::Cancelled => ctx.log.line("cancelled: the attempt was killed"),
        }
        outcome
    }

    async fn transfer(
        &self,
        task: &LeasedTask,
        config: &Value,
        params: &Params,
        ctx: &TaskContext,
        mut stop: watch::Receiver<Stop>,
    ) -> Outcome {
        let (text, path) = if let Some(file) = config["file"].as_str() {
            let path = ctx.root.join(file);
            match std::fs::read_to_string(&path) {
                Ok(text) => (text, path),
                Err(e) => return failed(format!("{}: {e}", path.display()), false),
            }
        } else {
            let dir = config["dir"].as_str().unwrap_or("");
            let leaf = task.name.rsplit('+').next().unwrap_or("job");
            let text = serde_yaml::to_string(&config["job"]).unwrap_or_default();
            (text, ctx.root.join(dir).join(format!("{leaf}.yaml")))
        };
        // `${…}` in the job's values (not its comments) take the task's
        // parameters; a lone `${rows}` keeps the parameter's type.
        let text = match serde_yaml::from_str::<Value>(&text) {
            Ok(value) => match sluice_workflow::render_value(&value, params, "") {
                Ok(v) => serde_yaml::to_string(&v).unwrap_or_default(),
                Err((at, name)) => {
                    return failed(
                        format!(
                            "{}: {}: unknown variable ${{{name}}}",
                            path.display(),
                            at.trim_start_matches('.')
                        ),
                        false,
                    );
                }
            },
            // Not YAML before templating (`{blob: ${dir}}` unquoted):
            // template the text, and let the job parser say what is wrong.
            Err(_) => match sluice_workflow::render(&text, params) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(name) => {
                    return failed(
                        format!("{}: unknown variable ${{{name}}}", path.display()),
                        false,
                    );
                }
            },
        };
        let mut job = match Job::parse(&text, &path, &|name| std::env::var(name).ok()) {
            Ok(job) => job,
            Err(e) => return failed(e.to_string(), false),
        };
        let explicit = serde_yaml::from_str::<serde_yaml::Value>(&text)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str().map(str::to_string)));
        // The state key: stable across attempts, distinct per loop round.
        let key = format!(
            "{}:{}",
            ctx.project,
            explicit.unwrap_or_else(|| task.name.clone())
        );
        job.name = Some(key.clone());
        for (name, value) in &ctx.secrets {
            job.secrets
                .entry(name.clone())
                .or_insert_with(|| sluice_pipeline::job::SecretValue(value.clone()));
        }
        // Ignore the saved state: the task says so (`full_refresh: true`),
        // or the attempt was started or retried with `--full-refresh`.
        let full_refresh = config["full_refresh"].as_bool().unwrap_or(false)
            || params.get("full_refresh") == Some(&Value::Bool(true));
        let run = self.store.start_run(&key, Some(task.id)).await.ok();
        let progress = Arc::new(Progress::default());
        let handle = tokio::runtime::Handle::current();
        let runtime = self.runtime.clone();
        let plugins = self.plugins.clone();
        let store = self.store.clone();
        let p = progress.clone();
        let state = StoreState {
            store,
            handle,
            job: key.clone(),
            run,
            owner: format!("task:{}", task.id),
        };
        let log = ctx.log.clone();
        let mut blocking = tokio::task::spawn_blocking(move || {
            let transfer = Transfer::prepare(job, &runtime, &plugins)?;
            if full_refresh {
                let cleared = state
                    .handle
                    .block_on(state.store.clear_state(&state.job, transfer.fingerprint()))
                    .map_err(|e| sluice_pipeline::Error::State(e.to_string()))?;
                log.line(&format!(
                    "full refresh: {cleared} saved partition state(s) cleared"
                ));
            }
            transfer.run(&state, full_refresh, &p)
        });
        let mut reason = Stop::Run;
        let result = loop {
            tokio::select! {
                r = &mut blocking => break r,
                changed = stop.changed(), if reason == Stop::Run => {
                    if changed.is_err() {
                        continue;
                    }
                    reason = *stop.borrow();
                    if reason != Stop::Run {
                        ctx.log.line("stopping at the next partition boundary");
                        progress.request_stop();
                    }
                }
            }
        };
        let rows = progress
            .rows_committed
            .load(std::sync::atomic::Ordering::Relaxed);
        match result {
            Err(join) => {
                let message = if join.is_panic() {
                    format!(
                        "internal error: the transfer panicked: {}",
                        sluice_runtime::panic::message(&*join.into_panic())
                    )
                } else {
                    format!("the transfer was stopped: {join}")
                };
                if let Some(run) = run {
                    let _ = self
                        .store
                        .finish_run(run, RunStatus::Failed, rows, 0, Some(&message))
                        .await;
                }
                failed(message, false)
            }
            Ok(Ok(summary)) => {
                for notice in &summary.notices {
                    ctx.log.line(notice);
                }
                let secs = summary.elapsed.as_secs_f64();
                let line = serde_json::json!({
                    "rows": summary.rows,
                    "bytes_in": summary.bytes_in,
                    "bytes_out": summary.bytes_out,
                    "seconds": (secs * 1000.0).round() / 1000.0,
                    "rows_per_second": if secs > 0.0 { (summary.rows as f64 / secs).round() } else { 0.0 },
                    "rejected": summary.rejected,
                    "outputs": summary.outputs,
                });
                ctx.log.line(&format!("transfer done: {line}"));
                self.metrics.transfer_moved(&summary);
                if let Some(run) = run {
                    let _ = self
                        .store
                        .finish_run(
                            run,
                            RunStatus::Succeeded,
                            summary.rows,
                            summary.bytes_out,
                            None,
                        )
                        .await;
                }
                Outcome::Succeeded {
                    summary: Some(line.to_string()),
                }
            }
            Ok(Err(e)) => {
                if let Some(run) = run {
                    let _ = self
                        .store
                        .finish_run(run, RunStatus::Failed, rows, 0, Some(&e.to_string()))
                        .await;
                }
                match (&e, reason) {
                    (sluice_pipeline::Error::Stopped { .. }, Stop::Cancel) => Outcome::Cancelled,
                    (sluice_pipeline::Error::Stopped { .. }, _) => {
                        ctx.log.line(&e.to_string());
                        Outcome::Released
                    }
                    _ => {
                        let retryable = !matches!(
                            e,
                            sluice_pipeline::Error::Job { .. }
                                | sluice_pipeline::Error::PluginNotFound { .. }
                                | sluice_pipeline::Error::Version { .. }
                        );
                        failed(e.to_string(), retryable)
                    }
                }
            }
        }
    }

    async fn sh(
        &self,
        config: &Value,
        params: &Params,
        ctx: &TaskContext,
        mut stop: watch::Receiver<Stop>,
    ) -> Outcome {
        if !self.allow_sh {
            return failed(
                "sh tasks are off on this worker: start it with --allow-sh (SLUICE_ALLOW_SH=1)",
                false,
            );
        }
        let Some(command) = config["command"].as_str() else {
            return failed("sh: expected a command", false);
        };
        let dir = ctx.root.join(config["dir"].as_str().unwrap_or(""));
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // Parameters as environment variables, as the shell expects them.
        for (k, v) in params {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                cmd.env(k, text);
            }
        }
        if let Some(env) = config["env"].as_object() {
            for (k, v) in env {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                match fill_secrets(&v, ctx) {
                    Ok(v) => cmd.env(k, v),
                    Err(e) => return failed(format!("sh: env {k}: {e}"), false),
                };
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return failed(format!("sh: cannot start: {e}"), true),
        };
        // Output goes through the log line by line, so secrets are masked.
        let copy = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
            let log = ctx.log.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let Some(pipe) = pipe else { return };
                let mut lines = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.line(&line);
                }
            })
        };
        let out = copy(child.stdout.take().map(|p| Box::new(p) as _));
        let err = copy(child.stderr.take().map(|p| Box::new(p) as _));
        loop {
            tokio::select! {
                status = child.wait() => {
                    let _ = out.await;
                    let _ = err.await;
                    return match status {
                        Ok(s) if s.success() => Outcome::Succeeded { summary: None },
                        Ok(s) => failed(format!("sh: `{}` exited with {s}", ctx.log.mask(command)), true),
                        Err(e) => failed(format!("sh: {e}"), true),
                    };
                }
                changed = stop.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let reason = *stop.borrow();
                    if reason == Stop::Run {
                        continue;
                    }
                    let _ = child.kill().await;
                    return if reason == Stop::Cancel { Outcome::Cancelled } else { Outcome::Released };
                }
            }
        }
    }

    async fn http(
        &self,
        config: &Value,
        ctx: &TaskContext,
        mut stop: watch::Receiver<Stop>,
    ) -> Outcome {
        let fill = |s: &str| fill_secrets(s, ctx);
        let Some(url) = config["url"].as_str() else {
            return failed("http: expected a url", false);
        };
        let url = match fill(url) {
            Ok(u) => u,
            Err(e) => return failed(format!("http: {e}"), false),
        };
        let body = match &config["body"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let method = config["method"]
            .as_str()
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| {
                if body.is_some() {
                    "POST".into()
                } else {
                    "GET".into()
                }
            });
        let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return failed(format!("http: bad method {method}"), false);
        };
        let timeout = config
            .get("timeout")
            .map(sluice_workflow::parse_duration)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or(Duration::from_secs(30));
        let mut request = self.http.request(method.clone(), &url).timeout(timeout);
        if let Some(headers) = config["headers"].as_object() {
            for (k, v) in headers {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                match fill(&v) {
                    Ok(v) => request = request.header(k, v),
                    Err(e) => return failed(format!("http: header {k}: {e}"), false),
                }
            }
        }
        if let Some(body) = body {
            let is_json = config["body"].is_object() || config["body"].is_array();
            let body = match fill(&body) {
                Ok(b) => b,
                Err(e) => return failed(format!("http: body: {e}"), false),
            };
            if is_json {
                request = request.header("content-type", "application/json");
            }
            request = request.body(body);
        }
        ctx.log.line(&format!("{method} {url}"));
        let response = tokio::select! {
            r = request.send() => r,
            reason = stop.wait_for(|s| *s != Stop::Run) => {
                let cancel = reason.map(|r| *r == Stop::Cancel).unwrap_or(false);
                return if cancel { Outcome::Cancelled } else { Outcome::Released };
            }
        };
        match response {
            Err(e) => failed(ctx.log.mask(&format!("http: {method} {url}: {e}")), true),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                let excerpt: String = text.chars().take(500).collect();
                ctx.log.line(&format!("HTTP {status}: {excerpt}"));
                if status.is_success() {
                    Outcome::Succeeded {
                        summary: Some(serde_json::json!({"status": status.as_u16()}).to_string()),
                    }
                } else {
                    let retryable = status.is_server_error() || status.as_u16() == 429;
                    failed(
                        ctx.log.mask(&format!(
                            "http: {method} {url} answered {status}: {excerpt}"
                        )),
                        retryable,
                    )
                }
            }
        }
    }
}
