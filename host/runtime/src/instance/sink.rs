//! Sink instances: `check`, the stream hooks, and a writer per task whose
//! commits hold their publishes back for the pipeline.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::component::ResourceAny;

use super::Sandbox;
use crate::batch::encode_schema;
use crate::capability::publish::PendingPublish;
use crate::error::{Error, Result};
use crate::versioned::SinkGuest;

/// What a sink reports on commit.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    /// Rows made durable.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Where they went.
    pub outputs: Vec<String>,
}

/// A commit: what it reports, and what it published, held back until the
/// pipeline has saved the state the commit covers (then
/// [`PendingPublish::publish`]), so a process killed in between can never
/// leave files whose rows are read again.
#[derive(Debug)]
pub struct Committed {
    /// What the sink reported.
    pub info: CommitInfo,
    /// The objects it published, not yet visible.
    pub pending: PendingPublish,
}

/// A sink plugin instance for one task.
pub struct SinkInstance {
    sandbox: Sandbox,
    guest: SinkGuest,
}

impl SinkInstance {
    pub(crate) fn new(sandbox: Sandbox, guest: SinkGuest) -> Self {
        SinkInstance { sandbox, guest }
    }

    /// Validate config and connectivity.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn check(&mut self, config: &str) -> Result<()> {
        let guest = &self.guest;
        self.sandbox.call("check", |s| guest.call_check(s, config))
    }

    /// Before any writer of `stream` opens in a run; `fresh` when the
    /// stream starts over.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn begin_stream(&mut self, config: &str, stream: &str, fresh: bool) -> Result<()> {
        let guest = &self.guest;
        self.sandbox.call("begin-stream", |s| {
            guest.call_begin_stream(s, config, stream, fresh)
        })
    }

    /// After every task of `stream` committed; returns outputs.
    ///
    /// # Errors
    /// The plugin's error, or a sandbox failure.
    pub fn finish_stream(&mut self, config: &str, stream: &str) -> Result<Vec<String>> {
        let guest = &self.guest;
        let outputs = self.sandbox.call("finish-stream", |s| {
            guest.call_finish_stream(s, config, stream)
        })?;
        self.sandbox.outputs("finish-stream", &outputs)?;
        Ok(outputs)
    }

    /// Open a writer; the instance becomes it.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn into_writer(
        mut self,
        config: &str,
        stream: &str,
        schema: &SchemaRef,
        task: &str,
    ) -> Result<SinkWriter> {
        let schema_ipc = encode_schema(schema);
        let guest = &self.guest;
        let handle = self.sandbox.call("writer.open", |s| {
            guest.call_open(s, config, stream, &schema_ipc, task)
        })?;
        Ok(SinkWriter {
            instance: self,
            handle: Some(handle),
            schema: schema.clone(),
        })
    }
}

/// An open writer.
pub struct SinkWriter {
    instance: SinkInstance,
    handle: Option<ResourceAny>,
    schema: SchemaRef,
}

impl SinkWriter {
    /// Write one batch; its schema must be the writer's.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let batch =
            crate::batch::conform(batch, &self.schema).map_err(|message| Error::InvalidOutput {
                plugin: "pipeline".into(),
                call: "writer.write".into(),
                message,
            })?;
        let handle = self.handle.expect("open until dropped");
        let input = self.instance.sandbox.lend(batch)?;
        let guest = &self.instance.guest;
        self.instance
            .sandbox
            .call("writer.write", |s| guest.call_write(s, handle, input))
    }

    /// Make everything written so far durable, and keep writing: what
    /// follows belongs to the next commit. What the sink published in the
    /// commit is not visible yet: see [`Committed`].
    ///
    /// `key` names this commit the same way in every run that makes it
    /// again (a retry after a crash), so what the sink sends to BigQuery in
    /// it is never loaded twice; `None` without saved state.
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn commit_so_far(&mut self, key: Option<String>) -> Result<Committed> {
        let handle = self.handle.expect("open until dropped");
        self.committed(handle, key)
    }

    /// Make everything written durable; see [`SinkWriter::commit_so_far`].
    ///
    /// # Errors
    /// The plugin's error or a sandbox failure.
    pub fn commit(mut self, key: Option<String>) -> Result<Committed> {
        let handle = self.handle.take().expect("open until dropped");
        let committed = self.committed(handle, key);
        self.instance.sandbox.drop_resource(handle);
        committed
    }

    /// One `writer.commit`, its publishes held back.
    fn committed(&mut self, handle: ResourceAny, key: Option<String>) -> Result<Committed> {
        let guest = &self.instance.guest;
        let sandbox = &mut self.instance.sandbox;
        let data = sandbox.store.data_mut();
        data.deferring = true;
        data.commit_key = key;
        data.commit_loads = 0;
        let info = sandbox.call("writer.commit", |s| guest.call_commit(s, handle));
        let data = sandbox.store.data_mut();
        data.deferring = false;
        data.commit_key = None;
        // Held back even when the commit failed: dropped, they discard.
        let pending = data.take_deferred();
        let info = info?;
        sandbox.outputs("writer.commit", &info.outputs)?;
        Ok(Committed {
            info: CommitInfo {
                rows: info.rows,
                bytes: info.bytes,
                outputs: info.outputs,
            },
            pending,
        })
    }

    /// Discard everything written.
    pub fn abort(mut self) {
        if let Some(handle) = self.handle.take() {
            let guest = &self.instance.guest;
            let _ = self
                .instance
                .sandbox
                .call("writer.abort", |s| guest.call_abort(s, handle).map(Ok));
            self.instance.sandbox.drop_resource(handle);
        }
    }
}

impl Drop for SinkWriter {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.instance.sandbox.drop_resource(handle);
        }
    }
}
