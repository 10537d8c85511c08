//! A native test harness: run a plugin in-process with `cargo test`.
//!
//! The harness drives a [`Source`], [`Filter`] or [`Sink`] the way the host
//! does: it validates the config against the plugin's JSON Schema, then
//! calls `discover`, `partitions`, `open` and `next` (or `process`, or
//! `write` and `commit`). Capabilities are the host's own code running
//! in-process: `blob` and `codec` work on the directory given to
//! [`Harness::with_blob`], so a file source reads real files through the
//! real decoder.
//!
//! ```ignore
//! use sluice_sdk::testing::Harness;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("a.csv"), "x\n1\n2\n")?;
//! let out = Harness::with_blob(dir.path()).read::<FileSource>(json!({"paths": ["*.csv"]}))?;
//! assert_eq!(out.rows(), 2);
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use serde_json::Value;
use sluice_codec::{LocalStore, ObjectStore, Staged};

use crate::traits::{config_schema, parse_config};
use crate::{
    Batch, CommitInfo, Error, Event, Filter, Reader, Result, Sink, Source, StreamInfo, Transformer,
    Writer,
};

thread_local! {
    /// The directory granted to plugins run on this thread.
    static GRANT: RefCell<Option<Arc<dyn ObjectStore>>> = const { RefCell::new(None) };
    static REJECTS: RefCell<sluice_codec::RejectLog> = RefCell::new(Default::default());
    /// Objects written staged and not yet published, as the host keeps them.
    static STAGED: RefCell<BTreeMap<String, Box<dyn Staged>>> = RefCell::new(BTreeMap::new());
}

pub(crate) fn granted_store() -> Result<Arc<dyn ObjectStore>> {
    GRANT.with(|g| g.borrow().clone()).ok_or_else(|| {
        Error::config("capability `blob` is not granted: use testing::Harness::with_blob(dir)")
    })
}

pub(crate) fn stage(path: &str, staged: Box<dyn Staged>) {
    STAGED.with(|s| s.borrow_mut().insert(path.to_string(), staged));
}

pub(crate) fn publish(path: &str) -> Result<()> {
    let mut staged = STAGED
        .with(|s| s.borrow_mut().remove(path))
        .ok_or_else(|| Error::config(format!("nothing staged at {path}")))?;
    Ok(staged.publish()?)
}

pub(crate) fn discard(path: &str) {
    STAGED.with(|s| s.borrow_mut().remove(path));
}

pub(crate) fn rejects() -> sluice_codec::RejectLog {
    REJECTS.with(|r| r.borrow().clone())
}

/// Runs plugins in-process, on this thread.
pub struct Harness {
    _private: (),
}

/// Everything a source produced.
#[derive(Debug, Default)]
pub struct SourceOutput {
    /// What `discover` reported.
    pub streams: Vec<StreamInfo>,
    /// Every batch, in order.
    pub batches: Vec<RecordBatch>,
    /// `(partition id, state)` for every checkpoint, in order.
    pub checkpoints: Vec<(String, String)>,
    /// Rows skipped as invalid (`on_invalid: skip`).
    pub rejected: Vec<sluice_codec::Reject>,
}

impl SourceOutput {
    /// Rows in all batches.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl Harness {
    /// A harness that grants nothing.
    pub fn new() -> Harness {
        GRANT.with(|g| *g.borrow_mut() = None);
        Harness { _private: () }
    }

    /// A harness that grants `dir` as the `blob` capability (read-write).
    pub fn with_blob(dir: impl AsRef<Path>) -> Harness {
        let store: Arc<dyn ObjectStore> = Arc::new(
            LocalStore::open(dir.as_ref())
                .unwrap_or_else(|e| panic!("the harness's blob directory: {e}")),
        );
        GRANT.with(|g| *g.borrow_mut() = Some(store));
        Harness { _private: () }
    }

    /// Check `config` against the plugin's JSON Schema, as the host does
    /// before the plugin sees it; errors name the path (`config.paths`).
    ///
    /// # Errors
    /// A config error listing every violation.
    pub fn validate<C: schemars::JsonSchema>(&self, config: &Value) -> Result<()> {
        let schema: Value = serde_json::from_str(&config_schema::<C>()).expect("schema is JSON");
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| Error::internal(format!("the config schema is invalid: {e}")))?;
        let problems: Vec<String> = validator
            .iter_errors(config)
            .map(|e| {
                let at = e.instance_path().to_string().replace('/', ".");
                format!("config{at}: {e}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::config(problems.join("; ")))
        }
    }

    fn config<C: schemars::JsonSchema + serde::de::DeserializeOwned>(
        &self,
        config: &Value,
    ) -> Result<C> {
        self.validate::<C>(config)?;
        parse_config(&config.to_string())
    }

    /// Read every stream of a source: discover, partition, read each
    /// partition to its end. `state` is passed to `partitions` as the host
    /// would (a JSON object of partition states), or `None`.
    ///
    /// # Errors
    /// The first error the source returns.
    pub fn read<S: Source>(&self, config: Value) -> Result<SourceOutput> {
        self.read_with_state::<S>(config, None)
    }

    /// [`Harness::read`] continuing from saved partition states.
    ///
    /// # Errors
    /// The first error the source returns.
    pub fn read_with_state<S: Source>(
        &self,
        config: Value,
        state: Option<&BTreeMap<String, String>>,
    ) -> Result<SourceOutput> {
        let parsed: S::Config = self.config::<S::Config>(&config)?;
        let mut out = SourceOutput {
            streams: S::discover(&parsed)?,
            ..SourceOutput::default()
        };
        let state_json = state.map(|s| serde_json::to_string(s).expect("strings serialize"));
        for stream in out.streams.clone() {
            for partition in S::partitions(&parsed, &stream.name, state_json.as_deref())? {
                let saved = state.and_then(|s| s.get(&partition.id).cloned());
                let id = partition.id.clone();
                let mut reader = S::open(self.config::<S::Config>(&config)?, partition, saved)?;
                while let Some(event) = reader.next()? {
                    match event {
                        Event::Batch(batch) => out.batches.push(batch.to_record_batch()?),
                        Event::Checkpoint(s) => out.checkpoints.push((id.clone(), s)),
                    }
                }
            }
        }
        out.rejected = std::mem::take(&mut *rejects().lock().unwrap_or_else(|e| e.into_inner()));
        Ok(out)
    }

    /// Run batches through a filter, then `finish`; checks every output
    /// batch has the declared output schema, as the host does.
    ///
    /// # Errors
    /// The filter's error, or an output batch of another schema.
    pub fn filter<F: Filter>(
        &self,
        config: Value,
        input: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>> {
        let Some(first) = input.first() else {
            return Ok(Vec::new());
        };
        let mut t = F::open(self.config::<F::Config>(&config)?, first.schema())?;
        let declared = t.output_schema();
        let mut out = Vec::new();
        for batch in input {
            out.extend(t.process(batch)?);
        }
        out.extend(t.finish()?);
        for b in &out {
            if !sluice_types::same_fields(&b.schema(), &declared) {
                return Err(Error::internal(format!(
                    "output batch schema {:?} differs from the declared {:?}",
                    b.schema().fields(),
                    declared.fields()
                )));
            }
        }
        Ok(out)
    }

    /// Write batches with a sink as task `0`, then commit.
    ///
    /// # Errors
    /// The sink's error (after `abort`).
    pub fn write<K: Sink>(
        &self,
        config: Value,
        stream: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<CommitInfo> {
        let Some(first) = batches.first() else {
            return Err(Error::internal(
                "write needs at least one batch (for the schema)",
            ));
        };
        let mut writer = K::open(
            self.config::<K::Config>(&config)?,
            stream,
            first.schema(),
            "0",
        )?;
        for b in &batches {
            if let Err(e) = writer.write(Batch::from_record_batch(b)?) {
                writer.abort();
                return Err(e);
            }
        }
        writer.commit()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        GRANT.with(|g| *g.borrow_mut() = None);
    }
}
