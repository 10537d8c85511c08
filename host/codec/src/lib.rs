//! Native Arrow readers and writers over object stores.
//!
//! CSV (with byte ranges and `on_invalid: skip`), JSON Lines and Parquet,
//! gzip and zstd, over any [`ObjectStore`]; the local-directory store is
//! here, the S3 one in `sluice-s3`. The host serves
//! them to plugins through the `codec` and `blob` capabilities; the SDK's
//! native test harness uses the same code, so a plugin's `cargo test` sees
//! exactly what the host would do.

mod columns;
mod csv;
mod dictionary;
mod error;
mod file;
mod json_lines;
pub mod local;
mod packed_columns;
mod parquet_compat;
mod reject;
pub mod store;

pub use columns::{batch_to_columns, columns_to_batch};
pub use error::{Error, ErrorKind};
pub use file::{
    Compression, DecodeOptions, Decoder, EncodeOptions, Encoder, FileStats, Finished, Format,
    OnInvalid, inspect,
};
pub use json_lines::{batch_to_json_lines, json_lines_to_batch};
pub use local::LocalStore;
pub use reject::{Reject, RejectLog};
pub use store::{ObjectInfo, ObjectStore, ObjectWriter, Staged};
