//! # sluice-sdk: write Sluice plugins in Rust
//!
//! A plugin is a WebAssembly component that exports one of three kinds:
//!
//! - a [`Source`] reads streams of batches (`check`, `discover`,
//!   `partitions`, and a [`Reader`] per partition);
//! - a [`Filter`] transforms batches (a [`Transformer`] per task);
//! - a [`Sink`] writes batches and commits them (a [`Writer`] per task).
//!
//! Implement the trait, then call the matching macro once:
//! [`export_source!`], [`export_filter!`] or [`export_sink!`]. Config is a
//! serde type that also derives [`schemars::JsonSchema`]: the host validates
//! a user's config against that schema before your code sees it.
//!
//! Plugins run sandboxed: no files, network or environment. What they may
//! touch comes through host capabilities the job grants: [`blob`] (object
//! storage), [`codec`] (native CSV/JSON/Parquet), and [`log`] (always).
//!
//! ```ignore
//! use sluice_sdk::*;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Config { rows: u64 }
//!
//! struct Counter;
//! impl Source for Counter { /* … */ }
//! export_source!(Counter);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`.

mod batch;
mod batch_columns;
pub mod bigquery;
pub mod blob;
pub mod codec;
mod error;
#[cfg(target_arch = "wasm32")]
mod glue;
pub mod http;
pub mod log;
pub mod sql;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod traits;

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_schema;
pub use batch::{Batch, decode_schema, encode_schema};
pub use error::{Error, ErrorKind, Result};
pub use schemars;
pub use serde_json;
/// Names shared with the host: type names (`parse_type`), file formats.
pub use sluice_types as types;
pub use sluice_types::columnar::{OutputColumn, Plan, keep_where};
pub use traits::{
    CommitInfo, Event, Filter, Info, Partition, Reader, Sink, Source, StreamInfo, SyncMode,
    Transformer, Writer,
};

/// The generated bindings; used by the export macros, not by plugin authors.
#[doc(hidden)]
pub mod __wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "::sluice_sdk::__wit",
        runtime_path: "::sluice_sdk::__wit_bindgen_rt",
    });
}

#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub use glue::{FilterPlugin, SinkPlugin, SourcePlugin};
#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

// Lets the generated code name this crate as `::sluice_sdk`, as plugins do.
extern crate self as sluice_sdk;

/// Export a [`Source`] implementation as this component's plugin.
#[macro_export]
macro_rules! export_source {
    ($plugin:ty) => {
        // Exports exist only in the wasm build; natively (unit tests,
        // benchmarks) the crate is a plain library.
        #[cfg(target_arch = "wasm32")]
        type __SluiceSourcePlugin = $crate::SourcePlugin<$plugin>;
        #[cfg(target_arch = "wasm32")]
        $crate::__wit::__export_plugin!(__SluiceSourcePlugin with_types_in $crate::__wit);
    };
}

/// Export a [`Filter`] implementation as this component's plugin.
#[macro_export]
macro_rules! export_filter {
    ($plugin:ty) => {
        // Exports exist only in the wasm build; natively (unit tests,
        // benchmarks) the crate is a plain library.
        #[cfg(target_arch = "wasm32")]
        type __SluiceFilterPlugin = $crate::FilterPlugin<$plugin>;
        #[cfg(target_arch = "wasm32")]
        $crate::__wit::__export_plugin!(__SluiceFilterPlugin with_types_in $crate::__wit);
    };
}

/// Export a [`Sink`] implementation as this component's plugin.
#[macro_export]
macro_rules! export_sink {
    ($plugin:ty) => {
        // Exports exist only in the wasm build; natively (unit tests,
        // benchmarks) the crate is a plain library.
        #[cfg(target_arch = "wasm32")]
        type __SluiceSinkPlugin = $crate::SinkPlugin<$plugin>;
        #[cfg(target_arch = "wasm32")]
        $crate::__wit::__export_plugin!(__SluiceSinkPlugin with_types_in $crate::__wit);
    };
}
