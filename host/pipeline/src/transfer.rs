//! One transfer: partitions → readers → filters → writers.
//!
//! Each task (one partition of one stream) gets fresh sandboxed instances:
//! its reader runs on one thread and sends batches over a bounded channel
//! to a second thread that runs the filters and the writer, so reading and
//! writing overlap and memory stays bounded by `exec.queue_batches`.
//! A partition's state is saved only after its writer committed.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_runtime::{
    BlobGrant, ConnectionUrl, Grants, HttpGrant, LoadReport, Partition, Plugin, PluginKind,
    ReaderEvent, Reject, Runtime, Secret, StreamInfo, Transformer, same_fields,
};

use crate::error::{Error, Result};
use crate::job::{Job, PluginStep, step_path};
use crate::plugins::PluginDirs;
use crate::progress::Progress;

/// Where partition state is read from and saved to.
pub trait StateStore: Sync {
    /// Every saved partition state of `stream`.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn load(&self, stream: &str) -> Result<BTreeMap<String, String>>;

    /// Save one partition's state (called after the sink committed).
    ///
    /// # Errors
    /// When the store cannot be written.
    fn save(&self, stream: &str, partition: &str, state: &str) -> Result<()>;
}

/// A store that remembers nothing: every run is a full refresh.
pub struct NoState;

impl StateStore for NoState {
    fn load(&self, _stream: &str) -> Result<BTreeMap<String, String>> {
        Ok(BTreeMap::new())
    }
    fn save(&self, _stream: &str, _partition: &str, _state: &str) -> Result<()> {
        Ok(())
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Rows committed by the sink.
    pub rows: u64,
    /// Bytes the source read from storage.
    pub bytes_in: u64,
    /// Bytes the sink wrote.
    pub bytes_out: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Tasks run.
    pub tasks: usize,
    /// Streams read.
    pub streams: Vec<String>,
    /// Everything the sink committed (files, tables).
    pub outputs: Vec<String>,
    /// How each plugin was loaded (name, report).
    pub plugins: Vec<(String, LoadReport)>,
    /// Rows the source skipped as invalid (`on_invalid: skip`).
    pub rejected: u64,
    /// Files holding those rows (JSON Lines: path, line, error, text).
    pub reject_files: Vec<String>,
}

/// A stage's plugin with the grants and config the job gives it.
#[derive(Clone)]
struct Stage {
    plugin: Plugin,
    grants: Arc<Grants>,
    config: String,
}

/// A job with its plugins loaded and configs validated: ready to run.
pub struct Transfer {
    job: Job,
    source: Stage,
    filters: Vec<Stage>,
    sink: Stage,
    rejects_dir: PathBuf,
}

struct Task {
    index: usize,
    partition: Partition,
    state: Option<String>,
    /// The stream's primary key, as the source reports it.
    primary_key: Vec<String>,
}

/// A stream of this run, and whether it starts over (no saved state).
type PlannedStream = (String, bool);

/// Schema metadata naming the stream's primary key, for sinks that merge.
pub const PRIMARY_KEY_METADATA: &str = "sluice.primary_key";

/// `schema` with the source's primary key in its metadata (a JSON array),
/// when every key column reached the sink under its own name.
fn with_primary_key(schema: &SchemaRef, key: &[String]) -> SchemaRef {
    if key.is_empty() || key.iter().any(|k| schema.index_of(k).is_err()) {
        return schema.clone();
    }
    let mut metadata = schema.metadata().clone();
    metadata.insert(
        PRIMARY_KEY_METADATA.to_string(),
        serde_json::to_string(key).expect("strings serialize"),
    );
    Arc::new(schema.as_ref().clone().with_metadata(metadata))
}

impl Transfer {
    /// Load every plugin and validate every config, before any data moves.
    ///
    /// # Errors
    /// Missing plugins, wrong kinds or versions, configs that fail a
    /// plugin's schema (naming the path in the job file), bad grants.
    pub fn prepare(job: Job, runtime: &Runtime, dirs: &PluginDirs) -> Result<Transfer> {
        let stage = |step: &PluginStep, kind: PluginKind, at: &str, config_at: &str| {
            let plugin = dirs.load(runtime, &step.plugin, kind, at, &job.base_dir)?;
            plugin
                .validate_config(&step.config, config_at)
                .map_err(|e| Error::Job {
                    file: job.file.display().to_string(),
                    message: e.to_string(),
                })?;
            let blob = match &step.grants.blob {
                Some(location) => Some(BlobGrant {
                    store: crate::storage::open(&job, at, location, kind == PluginKind::Sink)?,
                    writable: kind == PluginKind::Sink,
                }),
                None => None,
            };
            let mut sql = std::collections::BTreeMap::new();
            for name in &step.grants.sql {
                let Some(connection) = job.connections.get(name) else {
                    let declared: Vec<&str> = job.connections.keys().map(String::as_str).collect();
                    return Err(Error::Job {
                        file: job.file.display().to_string(),
                        message: format!(
                            "{at}.grants.sql: no connection named `{name}` under `connections:` (declared: [{}])",
                            declared.join(", ")
                        ),
                    });
                };
                sql.insert(name.clone(), ConnectionUrl(connection.url.clone()));
            }
            let http = match &step.grants.http {
                Some(h) => {
                    let mut secrets = std::collections::BTreeMap::new();
                    for name in &step.grants.secrets {
                        let Some(value) = job.secrets.get(name) else {
                            return Err(Error::Job {
                                file: job.file.display().to_string(),
                                message: format!(
                                    "{at}.grants.secrets: no secret named `{name}` under `secrets:`"
                                ),
                            });
                        };
                        secrets.insert(name.clone(), Secret(value.0.clone()));
                    }
                    Some(Arc::new(HttpGrant {
                        hosts: h.hosts.clone(),
                        timeout: std::time::Duration::from_secs_f64(h.timeout.max(0.001)),
                        max_response_bytes: h.max_response_mb.max(1) << 20,
                        secrets,
                    }))
                }
                None if !step.grants.secrets.is_empty() => {
                    return Err(Error::Job {
                        file: job.file.display().to_string(),
                        message: format!(
                            "{at}.grants.secrets: secrets reach a plugin only in HTTP request headers; grant `http: {{hosts: [...]}}` too"
                        ),
                    });
                }
                None => None,
            };
            Ok::<_, Error>(Stage {
                plugin,
                grants: Arc::new(Grants { blob, sql, http }),
                config: step.config.to_string(),
            })
        };
        let source = stage(
            &job.source,
            PluginKind::Source,
            "source",
            &step_path("source", None),
        )?;
        let filters = job
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| {
                stage(
                    f,
                    PluginKind::Filter,
                    &format!("filters[{i}]"),
                    &step_path("filters", Some(i)),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let sink = stage(
            &job.sink,
            PluginKind::Sink,
            "sink",
            &step_path("sink", None),
        )?;
        // Rejected rows go next to the output when the sink writes local
        // files, else beside the job file.
        let rejects_dir = sink
            .grants
            .blob
            .as_ref()
            .and_then(|grant| grant.store.local_file("rejects").ok().flatten())
            .unwrap_or_else(|| job.base_dir.join("rejects"));
        Ok(Transfer {
            job,
            source,
            filters,
            sink,
            rejects_dir,
        })
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// How each plugin was loaded.
    pub fn load_reports(&self) -> Vec<(String, LoadReport)> {
        std::iter::once(&self.source)
            .chain(&self.filters)
            .chain(std::iter::once(&self.sink))
            .map(|s| (s.plugin.name().to_string(), s.plugin.load_report()))
            .collect()
    }

    /// Check config and connectivity of the source and the sink.
    ///
    /// # Errors
    /// The first plugin that fails its check.
    pub fn check(&self) -> Result<()> {
        let limits = self.job.exec.limits();
        self.source
            .plugin
            .source(self.source.grants.clone(), limits)?
            .check(&self.source.config)?;
        self.sink
            .plugin
            .sink(self.sink.grants.clone(), limits)?
            .check(&self.sink.config)?;
        Ok(())
    }

    /// The streams the source offers, limited to `source.streams` if set.
    ///
    /// # Errors
    /// The source's error, or a stream the job names that does not exist.
    pub fn discover(&self) -> Result<Vec<StreamInfo>> {
        let limits = self.job.exec.limits();
        let mut instance = self
            .source
            .plugin
            .source(self.source.grants.clone(), limits)?;
        let streams = instance.discover(&self.source.config)?;
        match &self.job.source.streams {
            None => Ok(streams),
            Some(wanted) => {
                for w in wanted {
                    if !streams.iter().any(|s| &s.name == w) {
                        let known: Vec<_> = streams.iter().map(|s| s.name.as_str()).collect();
                        return Err(Error::Job {
                            file: self.job.file.display().to_string(),
                            message: format!(
                                "source.streams: no stream `{w}` (the source has: {})",
                                known.join(", ")
                            ),
                        });
                    }
                }
                Ok(streams
                    .into_iter()
                    .filter(|s| wanted.contains(&s.name))
                    .collect())
            }
        }
    }

    /// Streams (with whether each starts over: no saved state) and tasks.
    fn plan(
        &self,
        state: &dyn StateStore,
        full_refresh: bool,
    ) -> Result<(Vec<PlannedStream>, Vec<Task>)> {
        let limits = self.job.exec.limits();
        let streams = self.discover()?;
        let mut instance = self
            .source
            .plugin
            .source(self.source.grants.clone(), limits)?;
        let mut tasks = Vec::new();
        let mut planned = Vec::new();
        for stream in &streams {
            let saved = if full_refresh {
                BTreeMap::new()
            } else {
                state.load(&stream.name)?
            };
            let saved_json = if saved.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&saved).expect("strings serialize"))
            };
            planned.push((stream.name.clone(), saved.is_empty()));
            for partition in
                instance.partitions(&self.source.config, &stream.name, saved_json.as_deref())?
            {
                let state = saved.get(&partition.id).cloned();
                tasks.push(Task {
                    index: tasks.len(),
                    partition,
                    state,
                    primary_key: stream.primary_key.clone(),
                });
            }
        }
        Ok((planned, tasks))
    }

    /// Run the transfer.
    ///
    /// # Errors
    /// The first task failure (after retries), naming stream and partition.
    /// Partitions that committed before it keep their saved state.
    pub fn run(
        &self,
        state: &dyn StateStore,
        full_refresh: bool,
        progress: &Progress,
    ) -> Result<Summary> {
        let started = Instant::now();
        let (streams, tasks) = self.plan(state, full_refresh)?;
        // Streams with work this run: the sink hears when each begins and,
        // once all its tasks committed, when it is complete.
        let active: Vec<(String, bool)> = streams
            .iter()
            .filter(|(name, _)| tasks.iter().any(|t| &t.partition.stream == name))
            .cloned()
            .collect();
        let streams: Vec<String> = streams.into_iter().map(|(name, _)| name).collect();
        let limits = self.job.exec.limits();
        for (stream, fresh) in &active {
            self.sink
                .plugin
                .sink(self.sink.grants.clone(), limits)?
                .begin_stream(&self.sink.config, stream, *fresh)?;
        }
        let task_count = tasks.len();
        progress
            .tasks_total
            .store(task_count as u64, Ordering::Relaxed);
        let queue = Mutex::new(tasks.into_iter().collect::<VecDeque<_>>());
        let cancel = AtomicBool::new(false);
        let outcomes: Mutex<Vec<Result<TaskOutcome>>> = Mutex::new(Vec::new());
        let workers = self.job.exec.parallelism().min(task_count.max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        if cancel.load(Ordering::Relaxed) || progress.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let Some(task) = queue.lock().expect("queue lock").pop_front() else {
                            break;
                        };
                        let outcome = self.run_task_with_retries(&task, state, progress, &cancel);
                        // A partition stopped at a checkpoint is no failure:
                        // the others stop at theirs.
                        if matches!(&outcome, Err(e) if !matches!(e, Error::Stopped { .. })) {
                            cancel.store(true, Ordering::Relaxed);
                        }
                        progress.tasks_done.fetch_add(1, Ordering::Relaxed);
                        outcomes.lock().expect("outcome lock").push(outcome);
                    }
                });
            }
        });
        let mut summary = Summary {
            tasks: task_count,
            streams,
            plugins: self.load_reports(),
            ..Summary::default()
        };
        let mut first_error = None;
        let mut stopped = 0;
        for outcome in outcomes.into_inner().expect("outcome lock") {
            match outcome {
                Ok(o) => {
                    summary.rejected += o.rejected;
                    summary.reject_files.extend(o.reject_file);
                    summary.rows += o.rows;
                    summary.bytes_in += o.bytes_in;
                    summary.bytes_out += o.bytes_out;
                    summary.outputs.extend(o.outputs);
                }
                Err(Error::Cancelled) => {}
                Err(Error::Stopped { .. }) => stopped += 1,
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let left = queue.into_inner().expect("queue lock").len() + stopped;
        if left > 0 {
            return Err(Error::Stopped {
                done: task_count - left,
                left,
            });
        }
        for (stream, _) in &active {
            let outputs = self
                .sink
                .plugin
                .sink(self.sink.grants.clone(), limits)?
                .finish_stream(&self.sink.config, stream)?;
            summary.outputs.extend(outputs);
        }
        summary.outputs.sort();
        summary.outputs.dedup();
        summary.reject_files.sort();
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    fn run_task_with_retries(
        &self,
        task: &Task,
        state: &dyn StateStore,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<TaskOutcome> {
        let mut attempt = 0;
        loop {
            let result = self.run_task(task, state, progress, cancel);
            match result {
                Err(e) if e.is_retryable() && attempt < self.job.exec.retries => {
                    attempt += 1;
                    let wait = Duration::from_millis(500 << attempt.min(6));
                    tracing::warn!(
                        stream = %task.partition.stream,
                        partition = %task.partition.id,
                        attempt,
                        "transient failure, retrying in {wait:?}: {e}"
                    );
                    std::thread::sleep(wait);
                }
                other => {
                    return other.map_err(|e| match e {
                        Error::Cancelled => Error::Cancelled,
                        Error::Stopped { .. } => e,
                        e => Error::Task {
                            stream: task.partition.stream.clone(),
                            partition: task.partition.id.clone(),
                            error: Box::new(e),
                        },
                    });
                }
            }
        }
    }

    fn run_task(
        &self,
        task: &Task,
        state: &dyn StateStore,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<TaskOutcome> {
        let limits = self.job.exec.limits();
        let source = self
            .source
            .plugin
            .source(self.source.grants.clone(), limits)?;
        let (tx, rx) = sync_channel::<Result<ReaderEvent>>(self.job.exec.queue_batches.max(1));
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut rejects = RejectFile::new(&self.rejects_dir, task);
                let mut reader = match source.into_reader(
                    &self.source.config,
                    &task.partition,
                    task.state.as_deref(),
                ) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return (0, rejects);
                    }
                };
                let mut counted = 0;
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let event = reader.next_event();
                    let skipped = reader.take_rejects();
                    if let Err(e) = rejects.append(&skipped) {
                        let _ = tx.send(Err(e));
                        break;
                    }
                    let read = reader.bytes_read();
                    progress
                        .bytes_in
                        .fetch_add(read - counted, Ordering::Relaxed);
                    counted = read;
                    match event {
                        Ok(Some(event)) => {
                            if tx.send(Ok(event)).is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            break;
                        }
                    }
                }
                (counted, rejects)
            });
            let outcome = self.consume(task, rx, state, progress, cancel);
            let (bytes_in, rejects) = reader
                .join()
                .unwrap_or_else(|_| (0, RejectFile::new(&self.rejects_dir, task)));
            let mut outcome = outcome?;
            outcome.bytes_in = bytes_in;
            outcome.rejected = rejects.count;
            outcome.reject_file = rejects.written.map(|p| p.display().to_string());
            if let Some(checkpoint) = &outcome.checkpoint {
                state.save(&task.partition.stream, &task.partition.id, checkpoint)?;
            }
            Ok(outcome)
        })
    }

    /// Open the filter chain for batches of `input`; returns it and the
    /// schema of what comes out of it.
    fn open_filters(&self, input: &SchemaRef) -> Result<(Vec<Transformer>, SchemaRef)> {
        let limits = self.job.exec.limits();
        let mut schema = input.clone();
        let mut transformers = Vec::with_capacity(self.filters.len());
        for f in &self.filters {
            let t = f
                .plugin
                .filter(f.grants.clone(), limits)?
                .into_transformer(&f.config, &schema)?;
            schema = t.output_schema().clone();
            transformers.push(t);
        }
        Ok((transformers, schema))
    }

    /// Open the filter chain and the writer for batches of `input`.
    fn open_outputs(
        &self,
        task: &Task,
        input: &SchemaRef,
    ) -> Result<(Vec<Transformer>, sluice_runtime::SinkWriter)> {
        let limits = self.job.exec.limits();
        let (transformers, schema) = self.open_filters(input)?;
        let schema = with_primary_key(&schema, &task.primary_key);
        let writer = self
            .sink
            .plugin
            .sink(self.sink.grants.clone(), limits)?
            .into_writer(
                &self.sink.config,
                &task.partition.stream,
                &schema,
                &task.index.to_string(),
            )?;
        Ok((transformers, writer))
    }

    fn consume(
        &self,
        task: &Task,
        rx: Receiver<Result<ReaderEvent>>,
        state: &dyn StateStore,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<TaskOutcome> {
        let mut input: Option<SchemaRef> = None;
        let mut outputs: Option<(Vec<Transformer>, sluice_runtime::SinkWriter)> = None;
        let mut checkpoint = None;
        let mut rows = 0u64;
        // Commits made before the task's end (`exec.commit_every_rows`).
        let mut committed = sluice_runtime::CommitInfo::default();
        let mut rows_since_commit = 0u64;
        let commit_every = self.job.exec.commit_every_rows;
        let result = (|| {
            for event in rx.iter() {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                match event? {
                    ReaderEvent::Checkpoint(s) => {
                        // Asked to stop (a worker shutting down): commit what
                        // came before this checkpoint, save it, and stop here.
                        let stop = progress.stop.load(Ordering::Relaxed);
                        // Every batch before this checkpoint is written:
                        // commit them and move the saved state here.
                        if let (Some(every), Some((_, writer))) =
                            (commit_every.or(stop.then_some(1)), outputs.as_mut())
                            && (rows_since_commit >= every.max(1) || stop)
                        {
                            let info = writer.commit_so_far()?;
                            committed.bytes += info.bytes;
                            committed.outputs.extend(info.outputs);
                            state.save(&task.partition.stream, &task.partition.id, &s)?;
                            rows_since_commit = 0;
                        }
                        if stop {
                            if outputs.is_none() {
                                state.save(&task.partition.stream, &task.partition.id, &s)?;
                            }
                            return Err(Error::Stopped { done: 0, left: 1 });
                        }
                        checkpoint = Some(s);
                    }
                    ReaderEvent::Batch(batch) => {
                        match &input {
                            None => {
                                input = Some(batch.schema());
                                outputs = Some(self.open_outputs(task, &batch.schema())?);
                            }
                            Some(schema) if !same_fields(schema, &batch.schema()) => {
                                return Err(Error::Plugin(sluice_runtime::Error::InvalidOutput {
                                    plugin: self.source.plugin.name().into(),
                                    call: "reader.next".into(),
                                    message: format!(
                                        "the schema changed mid-stream: first {:?}, now {:?}",
                                        schema.fields(),
                                        batch.schema().fields()
                                    ),
                                }));
                            }
                            Some(_) => {}
                        }
                        let (transformers, writer) = outputs.as_mut().expect("opened above");
                        for b in push_through(transformers, 0, vec![batch])? {
                            let n = b.num_rows() as u64;
                            writer.write(b)?;
                            rows += n;
                            rows_since_commit += n;
                            progress.rows.fetch_add(n, Ordering::Relaxed);
                        }
                    }
                }
            }
            Ok(())
        })();
        // Stop the reader (its sends now fail) before anything else.
        drop(rx);
        if let Err(e) = result {
            if let Some((_, writer)) = outputs {
                writer.abort();
            }
            return Err(e);
        }
        let Some((mut transformers, mut writer)) = outputs else {
            // The partition had no rows: nothing to write, but its state
            // (e.g. "this file is done") still moves forward.
            return Ok(TaskOutcome {
                checkpoint,
                ..TaskOutcome::default()
            });
        };
        let flushed = (|| {
            for i in 0..transformers.len() {
                let held = transformers[i].finish()?;
                for b in push_through(&mut transformers, i + 1, held)? {
                    let n = b.num_rows() as u64;
                    writer.write(b)?;
                    rows += n;
                    progress.rows.fetch_add(n, Ordering::Relaxed);
                }
            }
            Ok::<_, Error>(())
        })();
        if let Err(e) = flushed {
            writer.abort();
            return Err(e);
        }
        let commit = writer.commit()?;
        committed.bytes += commit.bytes;
        committed.outputs.extend(commit.outputs);
        Ok(TaskOutcome {
            rows,
            bytes_in: 0,
            bytes_out: committed.bytes,
            outputs: committed.outputs,
            checkpoint,
            ..TaskOutcome::default()
        })
    }

    /// Read the first `limit` rows after the filters, writing nothing.
    ///
    /// # Errors
    /// As [`Transfer::run`].
    pub fn preview(&self, limit: usize) -> Result<Vec<RecordBatch>> {
        let (_, tasks) = self.plan(&NoState, true)?;
        let limits = self.job.exec.limits();
        let mut out = Vec::new();
        let mut rows = 0;
        for task in tasks {
            let mut reader = self
                .source
                .plugin
                .source(self.source.grants.clone(), limits)?
                .into_reader(&self.source.config, &task.partition, None)?;
            let mut transformers: Option<Vec<Transformer>> = None;
            while rows < limit {
                let Some(event) = reader.next_event()? else {
                    break;
                };
                let ReaderEvent::Batch(batch) = event else {
                    continue;
                };
                if transformers.is_none() {
                    transformers = Some(self.open_filters(&batch.schema())?.0);
                }
                let ts = transformers.as_mut().expect("set above");
                for b in push_through(ts, 0, vec![batch])? {
                    let take = b.num_rows().min(limit - rows);
                    rows += take;
                    out.push(b.slice(0, take));
                }
            }
            if rows >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Pass batches through `transformers[from..]`.
fn push_through(
    transformers: &mut [Transformer],
    from: usize,
    mut batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    for t in transformers.iter_mut().skip(from) {
        let mut next = Vec::with_capacity(batches.len());
        for b in batches {
            next.extend(t.process(b)?);
        }
        batches = next;
    }
    Ok(batches)
}

#[derive(Debug, Default)]
struct TaskOutcome {
    rows: u64,
    bytes_in: u64,
    bytes_out: u64,
    outputs: Vec<String>,
    checkpoint: Option<String>,
    rejected: u64,
    reject_file: Option<String>,
}

/// One task's rejected rows, appended as JSON Lines as they are found, so
/// memory stays bounded however many rows are bad.
struct RejectFile {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    count: u64,
    written: Option<PathBuf>,
}

impl RejectFile {
    fn new(dir: &Path, task: &Task) -> Self {
        let stream: String = task
            .partition
            .stream
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        RejectFile {
            path: dir.join(format!("{stream}-{}.jsonl", task.index)),
            file: None,
            count: 0,
            written: None,
        }
    }

    fn append(&mut self, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let err = |e: std::io::Error| Error::Rejects(format!("{}: {e}", self.path.display()));
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            self.file = Some(std::io::BufWriter::new(
                std::fs::File::create(&self.path).map_err(err)?,
            ));
            self.written = Some(self.path.clone());
        }
        let file = self.file.as_mut().expect("opened above");
        for r in rejects {
            let line = serde_json::json!({"file": r.path, "line": r.line, "error": r.error, "text": r.text});
            writeln!(file, "{line}").map_err(err)?;
        }
        file.flush().map_err(err)?;
        self.count += rejects.len() as u64;
        Ok(())
    }
}
