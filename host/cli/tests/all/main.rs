//! End-to-end tests: the real `sluice` binary, the real wasm plugins, real files.
//!
//! Run through `cargo xtask test`, which builds the plugins first.

mod bigquery;
mod bigquery_source;
mod browser;
mod cache;
mod containment;
mod errors;
mod faults;
mod files;
mod filters;
mod fleet;
mod gcs;
mod http;
mod incremental;
mod mysql;
mod postgres;
mod registry;
mod s3;
mod sdk;
mod support;
mod workflows;
