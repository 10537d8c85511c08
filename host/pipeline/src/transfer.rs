//! One transfer: partitions → readers → filters → writers.
//!
//! Each task (one partition of one stream) gets fresh sandboxed instances:
//! its reader runs on one thread and sends batches over a bounded channel
//! to a second thread that runs the filters and the writer, so reading and
//! writing overlap and memory stays bounded by `exec.queue_batches`.
//! A partition's state is saved only after its writer committed.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_runtime::{
    BlobGrant, ConnectionUrl, Grants, HttpGrant, Journal, LoadReport, Plugin, PluginKind,
    ReaderEvent, Runtime, Secret, SinkInstance, SourceInstance, StreamInfo, Transformer, panic,
};

use crate::error::{Error, Result};
use crate::job::{Job, PluginStep, step_path};
use crate::plugins::PluginDirs;
use crate::progress::Progress;
use crate::state::{NoState, StateStore};
use crate::task::{Task, TaskOutcome, push_through};

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
    /// What the user should hear about this run (state found under another
    /// config, orphans of an earlier run discarded).
    pub notices: Vec<String>,
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
    pub(crate) rejects_dir: PathBuf,
    fingerprint: String,
    /// The journal of the run in progress, for the sink's writes.
    journal: Mutex<Option<Journal>>,
}

/// A stream of this run, and whether it starts over (no saved state).
type PlannedStream = (String, bool);

/// Schema metadata naming the stream's primary key, for sinks that merge.
pub const PRIMARY_KEY_METADATA: &str = "sluice.primary_key";

/// `schema` with the source's primary key in its metadata (a JSON array),
/// when every key column reached the sink under its own name.
pub(crate) fn with_primary_key(schema: &SchemaRef, key: &[String]) -> SchemaRef {
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
            let plugin = dirs.load(
                runtime,
                &step.plugin,
                kind,
                at,
                &job.base_dir,
                &job.exec.limits(),
            )?;
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
                let url = crate::storage::secret_or_text(&job, &connection.url).map_err(|m| {
                    Error::Job {
                        file: job.file.display().to_string(),
                        message: format!("connections.{name}.url: {m}"),
                    }
                })?;
                sql.insert(name.clone(), ConnectionUrl(url));
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
            let bigquery = match &step.grants.bigquery {
                Some(b) => Some(crate::storage::bigquery(&job, at, b)?),
                None => None,
            };
            Ok::<_, Error>(Stage {
                plugin,
                grants: Arc::new(Grants {
                    blob,
                    sql,
                    http,
                    bigquery,
                    journal: None,
                }),
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
            .and_then(|grant| grant.store.local_root().map(|root| root.join("rejects")))
            .unwrap_or_else(|| job.base_dir.join("rejects"));
        let fingerprint =
            crate::fingerprint::fingerprint(&job, source.plugin.info(), sink.plugin.info());
        Ok(Transfer {
            job,
            source,
            filters,
            sink,
            rejects_dir,
            fingerprint,
            journal: Mutex::new(None),
        })
    }

    /// The fingerprint of what this transfer reads and writes (the source's
    /// and the sink's plugins, resolved configs and grants, or the job's
    /// `state_key:`): with the job's name, the key of its saved state.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(crate) fn source_name(&self) -> &str {
        self.source.plugin.name()
    }

    pub(crate) fn sink_name(&self) -> &str {
        self.sink.plugin.name()
    }

    pub(crate) fn source_config(&self) -> &str {
        &self.source.config
    }

    pub(crate) fn sink_config(&self) -> &str {
        &self.sink.config
    }

    /// A fresh sandboxed instance of the source.
    pub(crate) fn source_instance(&self) -> Result<SourceInstance> {
        Ok(self
            .source
            .plugin
            .source(self.source.grants.clone(), self.job.exec.limits())?)
    }

    /// A fresh sandboxed instance of the sink, recording what it writes in
    /// the run's journal when there is one.
    pub(crate) fn sink_instance(&self) -> Result<SinkInstance> {
        let grants = match self.journal.lock().expect("journal lock").clone() {
            Some(journal) => Arc::new(Grants {
                journal: Some(journal),
                ..(*self.sink.grants).clone()
            }),
            None => self.sink.grants.clone(),
        };
        Ok(self.sink.plugin.sink(grants, self.job.exec.limits())?)
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

    /// Check config and connectivity of the source and the sink: their
    /// configs against the grants, as a run would meet them.
    ///
    /// # Errors
    /// The first plugin that fails its check.
    pub fn check(&self) -> Result<()> {
        guarded("check", || {
            self.source_instance()?.check(&self.source.config)?;
            self.sink_instance()?.check(&self.sink.config)?;
            Ok(())
        })
    }

    /// The streams the source offers, limited to `source.streams` if set.
    ///
    /// # Errors
    /// The source's error, or a stream the job names that does not exist.
    pub fn discover(&self) -> Result<Vec<StreamInfo>> {
        guarded("discover", || self.discover_streams())
    }

    fn discover_streams(&self) -> Result<Vec<StreamInfo>> {
        let streams = self.source_instance()?.discover(&self.source.config)?;
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

    /// Streams (with whether each starts over: no saved state), tasks, and
    /// what the state store had to say.
    fn plan(&self, state: &dyn StateStore, full_refresh: bool) -> Result<Plan> {
        let streams = self.discover_streams()?;
        let mut instance = self.source_instance()?;
        let mut plan = Plan::default();
        for stream in &streams {
            // Generations are kept even in a full refresh: they name
            // commits, and a full refresh's must not repeat earlier ones.
            let loaded = state.load(&self.fingerprint, &stream.name)?;
            let generations = loaded.generations;
            let saved = if full_refresh {
                BTreeMap::new()
            } else {
                plan.notices.extend(loaded.notice);
                loaded.partitions
            };
            let saved_json = if saved.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&saved).expect("strings serialize"))
            };
            plan.streams.push((stream.name.clone(), saved.is_empty()));
            for partition in
                instance.partitions(&self.source.config, &stream.name, saved_json.as_deref())?
            {
                let resume = saved.get(&partition.id).cloned();
                let generation = match generations.get(&partition.id) {
                    Some(g) => Some(*g),
                    None => state.generation(&self.fingerprint, &stream.name, &partition.id)?,
                };
                plan.tasks.push(Task {
                    index: plan.tasks.len(),
                    generation,
                    partition,
                    state: resume,
                    primary_key: stream.primary_key.clone(),
                    declared: stream.schema.clone(),
                });
            }
        }
        Ok(plan)
    }

    /// Discard what earlier runs of this job left half-written in the
    /// sink's store (a `kill -9` runs no cleanup): temporary files, open
    /// multipart uploads.
    fn discard_orphans(&self, state: &dyn StateStore, notices: &mut Vec<String>) -> Result<()> {
        let (Some(journal), Some(grant)) = (state.journal(), &self.sink.grants.blob) else {
            return Ok(());
        };
        let location = grant.store.location();
        let (mut discarded, mut published) = (0, 0);
        for orphan in state.orphans()? {
            if orphan.location != location {
                continue;
            }
            let done = match &orphan.publish {
                // Its commit saved state: the rows are delivered, so the
                // object is published, not written again.
                Some((token, path)) => grant.store.publish_orphan(token, path).map(|()| {
                    published += 1;
                }),
                None => grant.store.discard_orphan(&orphan.token).map(|()| {
                    discarded += 1;
                }),
            };
            done.map_err(|e| Error::Publish {
                message: format!(
                    "{location}: what an earlier run left at {}: {}",
                    orphan.token, e.message
                ),
            })?;
            journal.settled(&orphan.location, &orphan.token);
        }
        if discarded > 0 {
            notices.push(format!(
                "discarded {discarded} object(s) an earlier run left half-written in {location}"
            ));
        }
        if published > 0 {
            notices.push(format!(
                "published {published} object(s) an earlier run committed but did not live to publish, in {location}"
            ));
        }
        Ok(())
    }

    /// Run the transfer. A panic anywhere in it fails the run with an
    /// internal error; it never ends the run early as if it were done.
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
        *self.journal.lock().expect("journal lock") = state.journal().map(Journal);
        let result = guarded("the transfer", || {
            self.run_unguarded(state, full_refresh, progress)
        });
        *self.journal.lock().expect("journal lock") = None;
        result
    }

    fn run_unguarded(
        &self,
        state: &dyn StateStore,
        full_refresh: bool,
        progress: &Progress,
    ) -> Result<Summary> {
        let started = Instant::now();
        let mut notices = Vec::new();
        self.discard_orphans(state, &mut notices)?;
        let plan = self.plan(state, full_refresh)?;
        notices.extend(plan.notices);
        let (streams, tasks) = (plan.streams, plan.tasks);
        // Streams with work this run: the sink hears when each begins and,
        // once all its tasks committed, when it is complete.
        let active: Vec<(String, bool)> = streams
            .iter()
            .filter(|(name, _)| tasks.iter().any(|t| &t.partition.stream == name))
            .cloned()
            .collect();
        let streams: Vec<String> = streams.into_iter().map(|(name, _)| name).collect();
        for (stream, fresh) in &active {
            self.sink_instance()?
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
                        let outcome = self.run_task_with_retries(
                            &task,
                            &self.fingerprint,
                            state,
                            progress,
                            &cancel,
                        );
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
            notices,
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
                .sink_instance()?
                .finish_stream(&self.sink.config, stream)?;
            summary.outputs.extend(outputs);
        }
        summary.outputs.sort();
        summary.outputs.dedup();
        summary.reject_files.sort();
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Open the filter chain for batches of `input`; returns it and the
    /// schema of what comes out of it.
    pub(crate) fn open_filters(&self, input: &SchemaRef) -> Result<(Vec<Transformer>, SchemaRef)> {
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

    /// Read the first `limit` rows after the filters, writing nothing.
    ///
    /// # Errors
    /// As [`Transfer::run`].
    pub fn preview(&self, limit: usize) -> Result<Vec<RecordBatch>> {
        guarded("preview", || self.preview_unguarded(limit))
    }

    fn preview_unguarded(&self, limit: usize) -> Result<Vec<RecordBatch>> {
        let tasks = self.plan(&NoState, true)?.tasks;
        let mut out = Vec::new();
        let mut rows = 0;
        for task in tasks {
            let mut reader =
                self.source_instance()?
                    .into_reader(&self.source.config, &task.partition, None)?;
            let mut transformers: Option<Vec<Transformer>> = None;
            let mut stream_schema = task.declared.clone();
            while rows < limit {
                let Some(event) = reader.next_event()? else {
                    break;
                };
                let ReaderEvent::Batch(batch) = event else {
                    continue;
                };
                let (batch, schema) =
                    self.source_batch(batch, &mut stream_schema, task.declared.is_some())?;
                if transformers.is_none() {
                    transformers = Some(self.open_filters(&schema)?.0);
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

/// What a run will do: its streams, tasks, and notices from the state store.
#[derive(Default)]
struct Plan {
    streams: Vec<PlannedStream>,
    tasks: Vec<Task>,
    notices: Vec<String>,
}

/// Run `f`, turning a panic into an internal error naming `what`.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    panic::catch(f).unwrap_or_else(|message| {
        Err(Error::Internal {
            at: what.to_string(),
            message,
        })
    })
}
