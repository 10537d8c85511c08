//! Host capabilities: what a plugin may touch, and only when granted.
//!
//! Each capability is a module with the host side of its WIT interface.
//! `log` is always granted; `blob` and `codec` need a [`BlobGrant`], `sql`
//! the named connections in [`Grants::sql`], outgoing `wasi:http` an
//! [`http::HttpGrant`].

pub(crate) mod arrays;
pub(crate) mod blob;
pub mod codec;
pub mod http;
mod log;
pub mod sql;
pub(crate) mod stderr;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use sluice_codec::{ObjectStore, Staged};

use crate::bindings::types::{Error as GuestError, ErrorKind as GuestErrorKind};
use crate::limits::MemoryLimiter;

/// What a job grants one plugin.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Object storage: a local directory or an object-store prefix.
    pub blob: Option<BlobGrant>,
    /// Database connections by the job's name for them, with their URLs.
    /// The URLs stay on the host side.
    pub sql: std::collections::BTreeMap<String, ConnectionUrl>,
    /// Hosts the plugin may send HTTP requests to, and the secrets its
    /// request headers may name.
    pub http: Option<Arc<http::HttpGrant>>,
}

/// A database URL, credentials included: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(pub String);

impl std::fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split("://").next().unwrap_or("?");
        write!(f, "{scheme}://…")
    }
}

/// Access to one tree of objects: a local directory or an S3 prefix.
#[derive(Clone)]
pub struct BlobGrant {
    /// The store; plugin paths are relative to its root and may not leave it.
    pub store: Arc<dyn ObjectStore>,
    /// Whether the plugin may write, rename and delete.
    pub writable: bool,
}

impl std::fmt::Debug for BlobGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobGrant")
            .field("store", &self.store.location())
            .field("writable", &self.writable)
            .finish()
    }
}

/// The data of one plugin instance's store.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) grants: Arc<Grants>,
    /// Bytes the codec read from storage for this instance (compressed size).
    pub(crate) bytes_read: Arc<AtomicU64>,
    /// Rows the codec skipped (`on_invalid: skip`), until the pipeline takes them.
    pub(crate) rejects: sluice_codec::RejectLog,
    /// The end of what the plugin wrote to stderr (panic messages).
    pub(crate) stderr: stderr::StderrTail,
    /// Objects written staged and not yet published, by path. Whatever is
    /// left when the instance ends is discarded (an S3 upload is aborted).
    pub(crate) staged: BTreeMap<String, Box<dyn Staged>>,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) http_hooks: http::Hooks,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, grants: Arc<Grants>, memory_bytes: usize) -> Self {
        // No preopened directories, no environment, no arguments, no sockets:
        // everything a plugin reaches goes through a granted capability.
        let stderr = stderr::StderrTail::default();
        let http_hooks = http::Hooks {
            plugin: plugin.clone(),
            grant: grants.http.clone(),
        };
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone())
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: memory_bytes,
                hit: false,
            },
            plugin,
            grants,
            bytes_read: Arc::new(AtomicU64::new(0)),
            rejects: Default::default(),
            stderr,
            staged: BTreeMap::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            http_hooks,
        }
    }

    fn blob_grant(&self, capability: &str) -> Result<&BlobGrant, GuestError> {
        self.grants.blob.as_ref().ok_or_else(|| GuestError {
            kind: GuestErrorKind::Config,
            message: format!(
                "capability `{capability}` is not granted to plugin {}: add `grants: {{blob: <dir>}}` to it in the job",
                self.plugin
            ),
        })
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            hooks: &mut self.http_hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A guest-visible error from a host-side failure.
pub(crate) fn data_error(message: impl Into<String>) -> GuestError {
    crate::bindings::guest_error(GuestErrorKind::Data, message)
}

/// A guest-visible config error.
pub(crate) fn config_error(message: impl Into<String>) -> GuestError {
    crate::bindings::guest_error(GuestErrorKind::Config, message)
}

/// Codec and local-storage errors, as the guest sees them.
impl From<sluice_codec::Error> for GuestError {
    fn from(e: sluice_codec::Error) -> Self {
        let kind = match e.kind {
            sluice_codec::ErrorKind::Config => GuestErrorKind::Config,
            sluice_codec::ErrorKind::Data => GuestErrorKind::Data,
            sluice_codec::ErrorKind::Transient => GuestErrorKind::Transient,
            sluice_codec::ErrorKind::Auth => GuestErrorKind::Auth,
            _ => GuestErrorKind::Internal,
        };
        crate::bindings::guest_error(kind, e.message)
    }
}
