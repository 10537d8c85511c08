//! Host capabilities: what a plugin may touch, and only when granted.
//!
//! Each capability is a module with the host side of its WIT interface.
//! `log` is always granted; `blob` and `codec` need a [`BlobGrant`], `sql`
//! the named connections in [`Grants::sql`], `bigquery` a project and
//! datasets in [`Grants::bigquery`], outgoing `wasi:http` an
//! [`http::HttpGrant`].

pub(crate) mod arrays;
pub mod bigquery;
pub mod bigquery_rows;
pub(crate) mod blob;
pub(crate) mod blocking;
pub mod codec;
pub mod http;
mod log;
mod plain_columns;
pub(crate) mod publish;
pub mod sql;
pub(crate) mod stderr;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use sluice_codec::ObjectStore;

use crate::bindings::types::{Error as GuestError, ErrorKind as GuestErrorKind};
use crate::limits::{MemoryLimiter, OutputCaps};

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
    /// BigQuery: a project, and the datasets in it the plugin may use.
    pub bigquery: Option<sluice_bigquery::BigQuery>,
    /// Where objects being written through the blob grant are recorded
    /// until they are published or discarded, so that a later run can
    /// clean up after a process that died writing them.
    pub journal: Option<Journal>,
}

/// Records objects being written until they settle: the host's defence
/// against a `kill -9` leaving temporary files and open multipart uploads.
pub trait StagingJournal: Send + Sync {
    /// An object is being written in the store at `location`; `token` is
    /// what [`ObjectStore::discard_orphan`] needs to remove it.
    ///
    /// # Errors
    /// When the record cannot be kept: the write is then refused.
    fn started(&self, location: &str, token: &str) -> Result<(), String>;

    /// The object was published or discarded: forget it.
    fn settled(&self, location: &str, token: &str);
}

/// A shared [`StagingJournal`].
#[derive(Clone)]
pub struct Journal(pub Arc<dyn StagingJournal>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
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
    pub(crate) staged: BTreeMap<String, publish::StagedObject>,
    /// Set during `writer.commit`: publishes are held back, for the
    /// pipeline to make once the commit's state is saved.
    pub(crate) deferring: bool,
    /// What the commit in progress published, held back.
    pub(crate) deferred: Vec<(String, publish::StagedObject)>,
    /// Set during `writer.commit` when the pipeline keeps state: names the
    /// commit the same way when it is retried after a crash, so a BigQuery
    /// load it makes gets the same job id and never loads twice.
    pub(crate) commit_key: Option<String>,
    /// Loads made in the commit in progress, to key each apart.
    pub(crate) commit_loads: u32,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) http_hooks: http::Hooks,
    /// When the call in progress must end: waiting WASI calls stop there.
    pub(crate) deadline: Option<std::time::Instant>,
    /// Set when a host capability panicked during the call in progress:
    /// the guest got an error, and the call fails whatever it made of it.
    pub(crate) host_panic: Option<String>,
    /// Caps on what the plugin hands back.
    pub(crate) caps: OutputCaps,
    /// Tokens of objects being written that the journal holds, settled
    /// when they are published, discarded, or when the instance ends.
    pub(crate) journaled: std::collections::BTreeSet<String>,
}

impl Drop for HostState {
    fn drop(&mut self) {
        // Unpublished objects discard themselves when dropped (a temporary
        // file removed, an upload aborted); only then are they settled.
        self.staged.clear();
        self.deferred.clear();
        drop(std::mem::replace(&mut self.table, ResourceTable::new()));
        if let (Some(journal), Some(grant)) = (&self.grants.journal, &self.grants.blob) {
            let location = grant.store.location();
            for token in std::mem::take(&mut self.journaled) {
                journal.0.settled(&location, &token);
            }
        }
    }
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        grants: Arc<Grants>,
        memory_bytes: usize,
        caps: OutputCaps,
    ) -> Self {
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
            deferring: false,
            deferred: Vec::new(),
            commit_key: None,
            commit_loads: 0,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            http_hooks,
            deadline: None,
            host_panic: None,
            caps,
            journaled: Default::default(),
        }
    }

    /// Record an object about to be written, when the job keeps a journal.
    pub(crate) fn record_staging(&self, token: &str) -> Result<(), sluice_codec::Error> {
        let (Some(journal), Some(grant)) = (&self.grants.journal, &self.grants.blob) else {
            return Ok(());
        };
        journal
            .0
            .started(&grant.store.location(), token)
            .map_err(|e| {
                sluice_codec::Error::transient(format!(
                    "cannot record the object being written in the state store: {e}"
                ))
            })
    }

    /// Hand the publishes held back during a commit to the pipeline, which
    /// settles their journal records from now on.
    pub(crate) fn take_deferred(&mut self) -> publish::PendingPublish {
        let deferred = std::mem::take(&mut self.deferred);
        for (_, object) in &deferred {
            if let Some(token) = &object.token {
                self.journaled.remove(token);
            }
        }
        publish::PendingPublish::new(
            self.grants.blob.as_ref().map(|g| &g.store),
            self.grants.journal.clone(),
            deferred,
        )
    }

    /// Forget an object that was published or discarded.
    pub(crate) fn journal_settled(&mut self, token: Option<&str>) {
        let (Some(journal), Some(grant), Some(token)) =
            (&self.grants.journal, &self.grants.blob, token)
        else {
            return;
        };
        if self.journaled.remove(token) {
            journal.0.settled(&grant.store.location(), token);
        }
    }

    /// Run the body of a host function that answers with a typed error:
    /// a panic in it becomes an internal error for the guest, and is
    /// remembered so the call into the plugin fails whatever the guest
    /// does with that error.
    pub(crate) fn guard<T>(
        &mut self,
        function: &'static str,
        body: impl FnOnce(&mut Self) -> wasmtime::Result<Result<T, GuestError>>,
    ) -> wasmtime::Result<Result<T, GuestError>> {
        self.caught(function, body).unwrap_or_else(|message| {
            Ok(Err(crate::bindings::guest_error(
                GuestErrorKind::Internal,
                format!("internal error in the host: {message}"),
            )))
        })
    }

    /// [`HostState::guard`] for a host function with no typed error: a
    /// panic in it traps the plugin.
    pub(crate) fn guard_trap<T>(
        &mut self,
        function: &'static str,
        body: impl FnOnce(&mut Self) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<T> {
        self.caught(function, body)
            .unwrap_or_else(|message| Err(wasmtime::format_err!("{message}")))
    }

    /// Run `body` (after the failpoint of `function`); a panic is recorded
    /// for the call in progress and returned as its message.
    fn caught<T>(
        &mut self,
        function: &'static str,
        body: impl FnOnce(&mut Self) -> T,
    ) -> Result<T, String> {
        crate::call_log::host_function(function);
        crate::panic::catch(|| {
            crate::failpoint::hit(function);
            body(self)
        })
        .map_err(|message| {
            let message = format!("host function {function} panicked: {message}");
            self.host_panic.get_or_insert(message.clone());
            message
        })
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
