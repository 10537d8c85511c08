//! One task: a partition read on one thread, filtered and written on
//! another, over a bounded channel.
//!
//! Nothing here may end as a success it has not earned. The reader says
//! when its partition is done with an explicit [`Message::End`]: a channel
//! that closes without it means the reader died (a panic), and the task
//! fails. Panics on either thread are caught and become
//! [`Error::Internal`] naming the stage; the writer then aborts, so nothing
//! after the last commit is published and the state stays where it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_runtime::{
    Committed, Partition, PendingPublish, ReaderEvent, Reject, SinkWriter, SourceInstance,
    Transformer, conform, failpoint, panic,
};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::state::StateStore;
use crate::transfer::{Transfer, with_primary_key};

/// One partition of one stream, to read and write.
#[derive(Clone)]
pub(crate) struct Task {
    pub(crate) index: usize,
    pub(crate) partition: Partition,
    pub(crate) state: Option<String>,
    /// The partition's saved generation, when the store keeps one: with
    /// the state it names the task's next commit (see [`commit_key`]).
    pub(crate) generation: Option<i64>,
    /// The stream's primary key, as the source reports it.
    pub(crate) primary_key: Vec<String>,
    /// The stream's schema as `discover` declared it, when it did: every
    /// batch is held to it.
    pub(crate) declared: Option<SchemaRef>,
}

/// What the reader thread sends the writer thread.
enum Message {
    Event(ReaderEvent),
    /// The partition was read to its end (or the task was cancelled).
    End,
    Failed(Error),
}

#[derive(Debug, Default)]
pub(crate) struct TaskOutcome {
    pub(crate) rows: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) outputs: Vec<String>,
    pub(crate) checkpoint: Option<String>,
    pub(crate) rejected: u64,
    pub(crate) reject_file: Option<String>,
    /// What the last commit published, held back until its state is saved.
    pub(crate) pending: Option<PendingPublish>,
}

/// Where the task's batches go: the filters, then the writer.
type Outputs = (Vec<Transformer>, SinkWriter);

impl Transfer {
    /// A batch from the source, held to the stream's schema: the one
    /// `discover` declared (`declared`), else the stream's first batch,
    /// which `stream_schema` then keeps. Returns the batch under that
    /// schema, and the schema; a batch that does not fit names the source.
    pub(crate) fn source_batch(
        &self,
        batch: RecordBatch,
        stream_schema: &mut Option<SchemaRef>,
        declared: bool,
    ) -> Result<(RecordBatch, SchemaRef)> {
        let schema = stream_schema.get_or_insert_with(|| batch.schema()).clone();
        let batch = conform(batch, &schema).map_err(|message| {
            let against = if declared {
                "the schema `discover` declared for the stream"
            } else {
                "the stream's first batch: the schema changed mid-stream"
            };
            Error::Plugin(sluice_runtime::Error::InvalidOutput {
                plugin: self.source_name().into(),
                call: "reader.next".into(),
                message: format!("a batch does not fit {against}: {message}"),
            })
        })?;
        Ok((batch, schema))
    }

    pub(crate) fn run_task_with_retries(
        &self,
        task: &Task,
        fingerprint: &str,
        state: &dyn StateStore,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<TaskOutcome> {
        let mut attempt = 0;
        let mut resumed: Option<Task> = None;
        loop {
            let current = resumed.as_ref().unwrap_or(task);
            let result =
                panic::catch(|| self.run_task(current, fingerprint, state, progress, cancel))
                    .unwrap_or_else(|message| {
                        Err(Error::Internal {
                            at: format!("the task of partition {}", task.partition.id),
                            message,
                        })
                    });
            match result {
                Err(e) if e.is_retryable() && attempt < self.job().exec.retries => {
                    attempt += 1;
                    let wait = std::time::Duration::from_millis(500 << attempt.min(6));
                    tracing::warn!(
                        stream = %task.partition.stream,
                        partition = %task.partition.id,
                        attempt,
                        "transient failure, retrying in {wait:?}: {e}"
                    );
                    std::thread::sleep(wait);
                    // Commits made before the failure moved the saved
                    // state: go on from there, not from where the task began.
                    let saved = state.load(fingerprint, &task.partition.stream)?;
                    resumed = Some(Task {
                        state: saved
                            .partitions
                            .get(&task.partition.id)
                            .cloned()
                            .or_else(|| task.state.clone()),
                        generation: saved
                            .generations
                            .get(&task.partition.id)
                            .copied()
                            .or(task.generation),
                        ..task.clone()
                    });
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
        fingerprint: &str,
        state: &dyn StateStore,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<TaskOutcome> {
        let source = self.source_instance()?;
        let (tx, rx) = sync_channel::<Message>(self.job().exec.queue_batches.max(1));
        let source_name = source_plugin_name(self);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let failed = tx.clone();
                match panic::catch(|| self.read(task, source, &tx, progress, cancel)) {
                    Ok(read) => read,
                    Err(message) => {
                        let _ = failed.send(Message::Failed(Error::Internal {
                            at: format!("the reader (plugin {source_name})"),
                            message,
                        }));
                        (0, RejectFile::new(&self.rejects_dir, task))
                    }
                }
            });
            let outcome =
                panic::catch(|| self.consume(task, &rx, fingerprint, state, progress, cancel))
                    .unwrap_or_else(|message| {
                        Err(Error::Internal {
                            at: format!("the writer (plugin {})", self.sink_name()),
                            message,
                        })
                    });
            // Stop the reader (its sends now fail) before waiting for it.
            drop(rx);
            let joined = reader.join();
            let mut outcome = outcome?;
            let (bytes_in, rejects) = joined.map_err(|p| Error::Internal {
                at: format!("the reader (plugin {})", source_plugin_name(self)),
                message: panic::message(&*p),
            })?;
            outcome.bytes_in = bytes_in;
            outcome.rejected = rejects.count;
            outcome.reject_file = rejects.written.map(|p| p.display().to_string());
            let pending = outcome.pending.take();
            match (&outcome.checkpoint, pending) {
                (Some(checkpoint), Some(pending)) => {
                    deliver(task, fingerprint, state, checkpoint, pending)?;
                }
                (Some(checkpoint), None) => {
                    state.save(
                        fingerprint,
                        &task.partition.stream,
                        &task.partition.id,
                        checkpoint,
                    )?;
                }
                // No state to save: nothing would read these rows again
                // differently, so they are simply made visible.
                (None, Some(pending)) => pending
                    .publish()
                    .map_err(|message| Error::Publish { message })?,
                (None, None) => {}
            }
            Ok(outcome)
        })
    }

    /// The reader thread: every event of the partition, then
    /// [`Message::End`]. Returns bytes read and the rejected rows' file.
    fn read(
        &self,
        task: &Task,
        source: SourceInstance,
        tx: &SyncSender<Message>,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> (u64, RejectFile) {
        let mut rejects = RejectFile::new(&self.rejects_dir, task);
        let mut reader = match source.into_reader(
            self.source_config(),
            &task.partition,
            task.state.as_deref(),
        ) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Message::Failed(e.into()));
                return (0, rejects);
            }
        };
        let mut counted = 0;
        loop {
            if cancel.load(Ordering::Relaxed) {
                let _ = tx.send(Message::End);
                break;
            }
            let event = reader.next_event();
            failpoint::hit("pipeline.reader");
            let skipped = reader.take_rejects();
            if let Err(e) = rejects.append(&skipped) {
                let _ = tx.send(Message::Failed(e));
                break;
            }
            let read = reader.bytes_read();
            progress
                .bytes_in
                .fetch_add(read - counted, Ordering::Relaxed);
            counted = read;
            let message = match event {
                Ok(Some(event)) => Message::Event(event),
                Ok(None) => {
                    let _ = tx.send(Message::End);
                    break;
                }
                Err(e) => {
                    let _ = tx.send(Message::Failed(e.into()));
                    break;
                }
            };
            if tx.send(message).is_err() {
                break;
            }
        }
        (counted, rejects)
    }

    /// Open the filter chain and the writer for batches of `input`.
    fn open_outputs(&self, task: &Task, input: &SchemaRef) -> Result<Outputs> {
        let (transformers, schema) = self.open_filters(input)?;
        let schema = with_primary_key(&schema, &task.primary_key);
        let writer = self.sink_instance()?.into_writer(
            self.sink_config(),
            &task.partition.stream,
            &schema,
            &task.index.to_string(),
        )?;
        Ok((transformers, writer))
    }

    /// The writer thread's work: every batch through the filters to the
    /// writer, commits at checkpoints, and the last commit. On any failure
    /// the writer aborts: nothing after the last commit is published.
    fn consume(
        &self,
        task: &Task,
        rx: &Receiver<Message>,
        fingerprint: &str,
        state: &dyn StateStore,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<TaskOutcome> {
        let mut run = Consumer {
            transfer: self,
            task,
            fingerprint,
            state,
            progress,
            stream_schema: task.declared.clone(),
            resumed_from: (task.state.clone(), task.generation),
            outputs: None,
            checkpoint: None,
            rows: 0,
            rows_since_commit: 0,
            committed: sluice_runtime::CommitInfo::default(),
        };
        let result = run.events(rx, cancel);
        if let Err(e) = result {
            if let Some((_, writer)) = run.outputs.take() {
                writer.abort();
            }
            return Err(e);
        }
        run.finish()
    }
}

fn source_plugin_name(transfer: &Transfer) -> String {
    transfer.source_name().to_string()
}

/// The state of one task's writer thread.
struct Consumer<'a> {
    transfer: &'a Transfer,
    task: &'a Task,
    fingerprint: &'a str,
    state: &'a dyn StateStore,
    progress: &'a Progress,
    /// The schema every batch of the stream must fit: `discover`'s, or
    /// else the first batch's.
    stream_schema: Option<SchemaRef>,
    /// The saved state the next commit starts from, and its generation.
    resumed_from: (Option<String>, Option<i64>),
    outputs: Option<Outputs>,
    checkpoint: Option<String>,
    rows: u64,
    rows_since_commit: u64,
    /// Commits made before the task's end (`exec.commit_every_rows`).
    committed: sluice_runtime::CommitInfo,
}

impl Consumer<'_> {
    fn events(&mut self, rx: &Receiver<Message>, cancel: &AtomicBool) -> Result<()> {
        loop {
            let message = rx.recv().map_err(|_| Error::Internal {
                at: format!("the reader (plugin {})", self.transfer.source_name()),
                message: "it stopped before the end of its partition, without an error".into(),
            })?;
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            match message {
                Message::End => return Ok(()),
                Message::Failed(e) => return Err(e),
                Message::Event(ReaderEvent::Checkpoint(s)) => self.checkpoint(s)?,
                Message::Event(ReaderEvent::Batch(batch)) => self.batch(batch)?,
            }
        }
    }

    fn checkpoint(&mut self, s: String) -> Result<()> {
        // Asked to stop (a worker shutting down): commit what came before
        // this checkpoint, save it, and stop here.
        let stop = self.progress.stop.load(Ordering::Relaxed);
        let every = self.transfer.job().exec.commit_every_rows;
        // Every batch before this checkpoint is written: commit them and
        // move the saved state here.
        if let (Some(every), Some((_, writer))) =
            (every.or(stop.then_some(1)), self.outputs.as_mut())
            && (self.rows_since_commit >= every.max(1) || stop)
        {
            let key = commit_key(self.task, self.fingerprint, &self.resumed_from);
            let Committed { info, pending } = writer.commit_so_far(key)?;
            let generation = deliver(self.task, self.fingerprint, self.state, &s, pending)?;
            self.resumed_from = (Some(s.clone()), generation);
            self.progress
                .rows_committed
                .fetch_add(info.rows, Ordering::Relaxed);
            self.committed.bytes += info.bytes;
            self.committed.outputs.extend(info.outputs);
            self.rows_since_commit = 0;
        }
        if stop {
            if self.outputs.is_none() {
                self.state.save(
                    self.fingerprint,
                    &self.task.partition.stream,
                    &self.task.partition.id,
                    &s,
                )?;
            }
            return Err(Error::Stopped { done: 0, left: 1 });
        }
        self.checkpoint = Some(s);
        Ok(())
    }

    fn batch(&mut self, batch: RecordBatch) -> Result<()> {
        failpoint::hit("pipeline.writer");
        let (batch, schema) = self.transfer.source_batch(
            batch,
            &mut self.stream_schema,
            self.task.declared.is_some(),
        )?;
        if self.outputs.is_none() {
            self.outputs = Some(self.transfer.open_outputs(self.task, &schema)?);
        }
        let (transformers, writer) = self.outputs.as_mut().expect("opened above");
        for b in push_through(transformers, 0, vec![batch])? {
            let n = b.num_rows() as u64;
            writer.write(b)?;
            self.rows += n;
            self.rows_since_commit += n;
            self.progress.rows.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// After the last event: flush the filters and commit.
    fn finish(mut self) -> Result<TaskOutcome> {
        let Some((mut transformers, mut writer)) = self.outputs.take() else {
            // The partition had no rows: nothing to write, but its state
            // (e.g. "this file is done") still moves forward.
            return Ok(TaskOutcome {
                checkpoint: self.checkpoint,
                ..TaskOutcome::default()
            });
        };
        let flushed = (|| {
            for i in 0..transformers.len() {
                let held = transformers[i].finish()?;
                for b in push_through(&mut transformers, i + 1, held)? {
                    let n = b.num_rows() as u64;
                    writer.write(b)?;
                    self.rows += n;
                    self.progress.rows.fetch_add(n, Ordering::Relaxed);
                }
            }
            Ok::<_, Error>(())
        })();
        if let Err(e) = flushed {
            writer.abort();
            return Err(e);
        }
        // Only a commit whose state is saved after it is named: one whose
        // state is not would have the same name in every run.
        let key = self
            .checkpoint
            .as_ref()
            .and_then(|_| commit_key(self.task, self.fingerprint, &self.resumed_from));
        let Committed { info, pending } = writer.commit(key)?;
        self.progress
            .rows_committed
            .fetch_add(info.rows, Ordering::Relaxed);
        self.committed.bytes += info.bytes;
        self.committed.outputs.extend(info.outputs);
        Ok(TaskOutcome {
            rows: self.rows,
            bytes_out: self.committed.bytes,
            outputs: std::mem::take(&mut self.committed.outputs),
            checkpoint: self.checkpoint,
            pending: Some(pending),
            ..TaskOutcome::default()
        })
    }
}

/// The name of a task's next commit: the job's fingerprint, the partition,
/// and the saved state the commit starts from with its generation. A
/// commit made again after a crash (its state was not saved) starts from
/// the same state and generation, so it has the same name; every save moves
/// the generation on, so no later commit shares it. None from a store that
/// keeps no generations.
fn commit_key(
    task: &Task,
    fingerprint: &str,
    (state, generation): &(Option<String>, Option<i64>),
) -> Option<String> {
    let generation = (*generation)?;
    Some(format!(
        "{fingerprint}\n{}\n{}\n{generation}\n{}",
        task.partition.stream,
        task.partition.id,
        state.as_deref().unwrap_or("")
    ))
}

/// Save the state a commit covers together with what it published, then
/// publish it: a process killed in between leaves the objects for the next
/// run to publish, never rows delivered twice. Returns the partition's
/// generation after the save.
fn deliver(
    task: &Task,
    fingerprint: &str,
    state: &dyn StateStore,
    checkpoint: &str,
    mut pending: PendingPublish,
) -> Result<Option<i64>> {
    failpoint::hit("pipeline.before-state-save");
    let generation = match state.save_committed(
        fingerprint,
        &task.partition.stream,
        &task.partition.id,
        checkpoint,
        &pending,
    ) {
        Ok(g) => g,
        Err(e) => {
            pending.discard();
            return Err(e);
        }
    };
    pending.mark_committed();
    failpoint::hit("pipeline.before-publish");
    pending
        .publish()
        .map_err(|message| Error::Publish { message })?;
    Ok(generation)
}

/// Pass batches through `transformers[from..]`.
pub(crate) fn push_through(
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

/// One task's rejected rows, appended as JSON Lines as they are found, so
/// memory stays bounded however many rows are bad.
pub(crate) struct RejectFile {
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
