//! The host's native CSV, JSON Lines and Parquet readers and writers.
//!
//! Batches decoded here stay in the host: a file source passes them on
//! without copying rows into wasm memory. Natively (unit tests with
//! [`crate::testing`]) the same reader and writer code runs in-process.

use arrow_schema::{Schema, SchemaRef};

use crate::{Batch, Result};

#[cfg(target_arch = "wasm32")]
use crate::__wit::sluice::plugin0_2_0::codec as wit;
#[cfg(target_arch = "wasm32")]
use crate::batch::{decode_schema, encode_schema};

/// What a file's metadata says, without reading its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    /// Parquet: rows in the file.
    pub rows: Option<u64>,
    /// Parquet: row groups, the unit a file can be split by.
    pub row_groups: Option<u64>,
}

/// Read a file's metadata (only Parquet has any).
///
/// # Errors
/// When the file is missing or not the format it claims.
pub fn inspect(path: &str, format: crate::types::FileFormat) -> Result<FileStats> {
    #[cfg(target_arch = "wasm32")]
    let s = wit::inspect(path, format.as_str())?;
    #[cfg(not(target_arch = "wasm32"))]
    let s = sluice_codec::inspect(&crate::testing::granted_store()?, path, format)?;
    Ok(FileStats {
        rows: s.rows,
        row_groups: s.row_groups,
    })
}

/// Reads one object (within the blob grant) as batches.
#[cfg(target_arch = "wasm32")]
pub struct Decoder(wit::Decoder);

/// Reads one object (within the blob grant) as batches.
#[cfg(not(target_arch = "wasm32"))]
pub struct Decoder(std::cell::RefCell<sluice_codec::Decoder>);

#[cfg(not(target_arch = "wasm32"))]
fn parse<T: serde::de::DeserializeOwned>(what: &str, options: &serde_json::Value) -> Result<T> {
    serde_json::from_value(options.clone())
        .map_err(|e| crate::Error::config(format!("{what} options: {e}")))
}

impl Decoder {
    /// Open `path`; `options` is the JSON the host's codec documents
    /// (`format`, `compression`, `header`, `delimiter`, …).
    ///
    /// # Errors
    /// Config errors for bad options, data errors for unreadable files.
    pub fn open(path: &str, options: &serde_json::Value) -> Result<Decoder> {
        #[cfg(target_arch = "wasm32")]
        return Ok(Decoder(wit::Decoder::open(path, &options.to_string())?));
        #[cfg(not(target_arch = "wasm32"))]
        {
            let options: sluice_codec::DecodeOptions = parse("decoder", options)?;
            let store = crate::testing::granted_store()?;
            let decoder = sluice_codec::Decoder::open(
                &store,
                path,
                &options,
                Default::default(),
                crate::testing::rejects(),
            )?;
            Ok(Decoder(std::cell::RefCell::new(decoder)))
        }
    }

    /// The schema every batch will have.
    ///
    /// # Errors
    /// Only on a host bug.
    pub fn schema(&self) -> Result<SchemaRef> {
        #[cfg(target_arch = "wasm32")]
        return decode_schema(&self.0.schema());
        #[cfg(not(target_arch = "wasm32"))]
        Ok(self.0.borrow().schema().clone())
    }

    /// The next batch, or `None` at the end.
    ///
    /// # Errors
    /// A data error naming the file and line.
    pub fn next_batch(&self) -> Result<Option<Batch>> {
        #[cfg(target_arch = "wasm32")]
        return Ok(self.0.next()?.map(Batch));
        #[cfg(not(target_arch = "wasm32"))]
        Ok(self.0.borrow_mut().next_batch()?.map(Batch))
    }

    /// Rows skipped as invalid so far.
    pub fn rejected(&self) -> u64 {
        #[cfg(target_arch = "wasm32")]
        return self.0.rejected();
        #[cfg(not(target_arch = "wasm32"))]
        self.0.borrow().rejected()
    }
}

/// Writes batches to one object (within a writable blob grant).
#[cfg(target_arch = "wasm32")]
pub struct Encoder(wit::Encoder);

/// Writes batches to one object (within a writable blob grant).
#[cfg(not(target_arch = "wasm32"))]
pub struct Encoder(std::cell::RefCell<sluice_codec::Encoder>);

impl Encoder {
    /// Create `path` for batches of `schema`; `options` is JSON (`format`,
    /// `compression`, `level`, `header`, `delimiter`, `row_group_rows`,
    /// `staged`: keep the finished object invisible until
    /// [`crate::blob::publish`]).
    ///
    /// # Errors
    /// Config errors for bad options or a read-only grant.
    pub fn create(path: &str, schema: &Schema, options: &serde_json::Value) -> Result<Encoder> {
        #[cfg(target_arch = "wasm32")]
        return Ok(Encoder(wit::Encoder::create(
            path,
            &encode_schema(schema),
            &options.to_string(),
        )?));
        #[cfg(not(target_arch = "wasm32"))]
        {
            let options: sluice_codec::EncodeOptions = parse("encoder", options)?;
            let store = crate::testing::granted_store()?;
            let encoder = sluice_codec::Encoder::create(
                store.as_ref(),
                path,
                std::sync::Arc::new(schema.clone()),
                &options,
            )?;
            Ok(Encoder(std::cell::RefCell::new(encoder)))
        }
    }

    /// Append a batch (no copy: the host writes its own batch).
    ///
    /// # Errors
    /// When the batch's schema differs or the write fails.
    pub fn write(&self, batch: &Batch) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        return Ok(self.0.write(&batch.0)?);
        #[cfg(not(target_arch = "wasm32"))]
        Ok(self.0.borrow_mut().write(&batch.0)?)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        #[cfg(target_arch = "wasm32")]
        return self.0.bytes_written();
        #[cfg(not(target_arch = "wasm32"))]
        self.0.borrow().bytes_written()
    }

    /// Flush and close; returns the size in bytes.
    ///
    /// # Errors
    /// When the final flush fails.
    pub fn finish(&self) -> Result<u64> {
        #[cfg(target_arch = "wasm32")]
        return Ok(self.0.finish()?);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut encoder = self.0.borrow_mut();
            let finished = encoder.finish()?;
            if let Some(staged) = finished.staged {
                crate::testing::stage(encoder.path(), staged);
            }
            Ok(finished.bytes)
        }
    }
}
