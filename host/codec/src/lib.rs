//! Native Arrow readers and writers over a local directory.
//!
//! CSV (with byte ranges and `on_invalid: skip`), JSON Lines and Parquet,
//! gzip and zstd, plus the local-directory object store. The host serves
//! them to plugins through the `codec` and `blob` capabilities; the SDK's
//! native test harness uses the same code, so a plugin's `cargo test` sees
//! exactly what the host would do.

mod error;
mod file;
pub mod local;
mod parquet_compat;
mod reject;

pub use error::{Error, ErrorKind};
pub use file::{
    Compression, DecodeOptions, Decoder, EncodeOptions, Encoder, FileStats, Format, OnInvalid,
    inspect, json_lines_to_batch,
};
pub use reject::{Reject, RejectLog};
