//! Sluice's WebAssembly runtime.
//!
//! One [`Runtime`] holds the wasmtime [`Engine`](wasmtime::Engine), the
//! on-disk cache of precompiled components and the epoch ticker that enforces
//! per-call deadlines. [`Runtime::load`] turns a `.wasm` file into a
//! [`Plugin`]: compiled once, linked once, and instantiated cheaply for each
//! task as a [`SourceInstance`], [`FilterInstance`] or [`SinkInstance`], each
//! in its own sandboxed store with only the capabilities the job granted.
//!
//! Everything a plugin returns is validated here (Arrow IPC is decoded with
//! validation, sizes are capped), so a malformed batch, a trap, a loop or a
//! memory bomb becomes an [`Error`] naming the plugin and the call, never a
//! panic of the host.

mod batch;
mod bindings;
mod cache;
pub mod call_log;
mod call_times;
pub mod capability;
mod error;
pub mod failpoint;
mod instance;
mod limits;
pub mod panic;
mod plugin;
mod versioned;

pub use batch::{
    Batch, SchemaDecoder, conform, decode_schema, describe_fields, encode_messages, encode_schema,
    same_fields,
};
pub use call_times::{CALL_SECONDS_BUCKETS, CallHistogram, CallTimes};
pub use capability::http::{HttpGrant, Secret};
pub use capability::publish::{PendingPublish, Publication};
pub use capability::{BlobGrant, ConnectionUrl, Grants, Journal, StagingJournal};
pub use error::{Error, ErrorKind, Result};
pub use instance::{
    CommitInfo, Committed, FilterInstance, Partition, ReaderEvent, SinkInstance, SinkWriter,
    SourceInstance, SourceReader, StreamInfo, SyncMode, Transformer,
};
pub use limits::{Limits, OutputCaps, truncate_message};
pub use plugin::{
    LoadReport, Plugin, PluginInfo, PluginKind, Runtime, RuntimeConfig, WIT_VERSION, served_range,
    wit_compatible,
};
pub use sluice_codec::{LocalStore, ObjectStore, Reject};
pub use versioned::WIT_VERSIONS;
