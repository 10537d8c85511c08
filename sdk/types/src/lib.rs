//! Names shared by the Sluice host and its plugins.
//!
//! Users write the same words in every job file (`int64`, `decimal(12,2)`,
//! `csv`, `.jsonl.zst`), whether the host's codec or a plugin reads them;
//! this small crate (no wasm or host dependencies) is their one definition.
//! It also holds what both sides must compute identically: how a
//! column-wise filter's output is assembled ([`columnar`]), and how a batch is
//! encoded as IPC messages ([`ipc`]).

pub mod columnar;
mod data_type;
mod dialect;
mod format;
pub mod ipc;
pub mod plain_columns;
mod schema;

pub use data_type::{parse_type, type_name};
pub use dialect::Dialect;
pub use format::{Compression, FileFormat};
pub use schema::same_fields;
