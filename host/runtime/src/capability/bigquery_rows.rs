//! What a plugin's BigQuery read hands back: pages of a query job's result,
//! or the Parquet an `EXPORT DATA` wrote under the blob grant.
//!
//! Exported objects are the host's own: written by BigQuery, read here
//! with the codec and deleted once read, so a source keeps its read-only
//! blob grant. What a killed run left is deleted before the next export
//! to the same path.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_codec::{DecodeOptions, Decoder, Error, ObjectStore, RejectLog};

/// A read's rows, batch by batch.
pub enum QueryRows {
    /// Pages of the query job's result.
    Results(sluice_bigquery::Results),
    /// Exported Parquet objects.
    Exported(Exported),
}

impl QueryRows {
    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        match self {
            QueryRows::Results(r) => r.schema(),
            QueryRows::Exported(e) => e.schema.clone(),
        }
    }

    /// The next batch, or `None` after the last.
    ///
    /// # Errors
    /// BigQuery's, or the object store's and the Parquet reader's.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, Error> {
        match self {
            QueryRows::Results(r) => r.next_batch(),
            QueryRows::Exported(e) => e.next_batch(),
        }
    }
}

/// Parquet objects an export wrote, read in order and deleted once read.
pub struct Exported {
    store: Arc<dyn ObjectStore>,
    objects: VecDeque<String>,
    current: Option<(String, Decoder)>,
    schema: SchemaRef,
    bytes_read: Arc<AtomicU64>,
}

fn parquet() -> Result<DecodeOptions, Error> {
    serde_json::from_value(serde_json::json!({"format": "parquet"}))
        .map_err(|e| Error::internal(format!("Parquet decoder options: {e}")))
}

impl Exported {
    /// Delete what an earlier export left under `dir`.
    ///
    /// # Errors
    /// The store's.
    pub fn clear(store: &Arc<dyn ObjectStore>, dir: &str) -> Result<(), Error> {
        for o in store.list(&format!("{dir}/*"), None)? {
            store.delete(&o.path)?;
        }
        Ok(())
    }

    /// The objects under `dir`; their schema is the first one's (or
    /// `schema`, the query's, without any).
    ///
    /// # Errors
    /// The store's, or an unreadable first object.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        dir: &str,
        schema: SchemaRef,
        bytes_read: Arc<AtomicU64>,
    ) -> Result<Exported, Error> {
        let objects: VecDeque<String> = store
            .list(&format!("{dir}/*"), None)?
            .into_iter()
            .map(|o| o.path)
            .collect();
        let mut exported = Exported {
            store,
            objects,
            current: None,
            schema,
            bytes_read,
        };
        if let Some(first) = exported.objects.pop_front() {
            let decoder = exported.decoder(&first)?;
            exported.schema = decoder.schema().clone();
            exported.current = Some((first, decoder));
        }
        Ok(exported)
    }

    fn decoder(&self, path: &str) -> Result<Decoder, Error> {
        Decoder::open(
            &self.store,
            path,
            &parquet()?,
            self.bytes_read.clone(),
            RejectLog::default(),
        )
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, Error> {
        loop {
            if let Some((path, decoder)) = &mut self.current {
                if let Some(batch) = decoder.next_batch()? {
                    return Ok(Some(batch));
                }
                // Read to its end: its rows are in the batches handed out.
                self.store.delete(path)?;
                self.current = None;
            }
            let Some(next) = self.objects.pop_front() else {
                return Ok(None);
            };
            let decoder = self.decoder(&next)?;
            self.current = Some((next, decoder));
        }
    }
}

impl Drop for Exported {
    /// Objects not read to the end go too: a failed read exports again.
    fn drop(&mut self) {
        let left = self.current.take().map(|(p, _)| p).into_iter();
        for path in left.chain(self.objects.drain(..)) {
            if let Err(e) = self.store.delete(&path) {
                tracing::warn!(path, error = %e.message, "could not delete an exported object");
            }
        }
    }
}
