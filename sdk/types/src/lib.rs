//! Names shared by the Sluice host and its plugins.
//!
//! Users write the same words in every job file (`int64`, `decimal(12,2)`,
//! `csv`, `.jsonl.zst`), whether the host's codec or a plugin reads them;
//! this small crate (no wasm or host dependencies) is their one definition.

mod data_type;
mod format;
mod schema;

pub use data_type::parse_type;
pub use format::{Compression, FileFormat};
pub use schema::same_fields;
