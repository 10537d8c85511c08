//! Loading plugins: the engine, the linker, and each plugin's `info()`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, ProfilingStrategy, Store};

use crate::bindings;
use crate::cache::ComponentCache;
use crate::call_times::CallTimes;
use crate::capability::{Grants, HostState};
use crate::error::{Error, Result};
use crate::instance::{FilterInstance, Sandbox, SinkInstance, SourceInstance, arm, call_error};
use crate::limits::{Limits, setting, truncate_message, within};
use crate::versioned::{ExportIndices, WIT_VERSIONS, WitVersion};

/// The newest version of the `sluice:plugin` WIT package this host
/// serves: what plugins built today target.
pub const WIT_VERSION: &str = WIT_VERSIONS[0];

/// Whether a plugin built against `sluice:plugin@found` runs here: the same
/// major version as one served, and below 1.0 the same minor, as semver has
/// it.
pub fn wit_compatible(found: &str) -> bool {
    WitVersion::serving(found).is_some()
}

/// The versions this host accepts, for messages: `0.2.x or 0.1.x`.
pub fn served_range() -> String {
    WIT_VERSIONS
        .iter()
        .map(|v| match v.rsplit_once('.') {
            Some((minor, _)) => format!("{minor}.x"),
            None => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The versions of `sluice:plugin` a component imports or exports.
fn wit_versions(component: &Component, engine: &Engine) -> Vec<String> {
    let ty = component.component_type();
    let mut found: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .chain(ty.exports(engine).map(|(name, _)| name.to_string()))
        .filter_map(|name| {
            name.strip_prefix("sluice:plugin/")
                .and_then(|rest| rest.split_once('@'))
                .map(|(_, version)| version.to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Link every `sluice:plugin` interface a plugin may import, once per
/// served version. Each is linked on its own, not through the world's
/// `add_to_linker`, because `arrays` is linked by hand (see
/// [`crate::capability::arrays`]) and because 0.1.0 gets the 0.2.0 code
/// under its own instance names: 0.2.0 only added functions, so every
/// 0.1.0 import type-checks against the 0.2.0 definitions, and a handle
/// made through one version is the same table entry in the other.
fn add_plugin_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use bindings::{bigquery, blob, codec, log, sql, types};
    type Data = wasmtime::component::HasSelf<HostState>;
    for version in WIT_VERSIONS {
        let name = |interface: &str| format!("sluice:plugin/{interface}@{version}");
        fn get(state: &mut HostState) -> &mut HostState {
            state
        }
        types::add_to_linker_instance::<HostState, Data>(
            &mut linker.instance(&name("types"))?,
            get,
        )?;
        log::add_to_linker_instance::<HostState, Data>(&mut linker.instance(&name("log"))?, get)?;
        blob::add_to_linker_instance::<HostState, Data>(&mut linker.instance(&name("blob"))?, get)?;
        codec::add_to_linker_instance::<HostState, Data>(
            &mut linker.instance(&name("codec"))?,
            get,
        )?;
        sql::add_to_linker_instance::<HostState, Data>(&mut linker.instance(&name("sql"))?, get)?;
        bigquery::add_to_linker_instance::<HostState, Data>(
            &mut linker.instance(&name("bigquery"))?,
            get,
        )?;
        crate::capability::arrays::add_to_linker(linker, version)?;
    }
    Ok(())
}

/// How often the epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Set (to anything) to have plugin code show up by name in `perf`.
pub const PERF_MAP_VAR: &str = "SLUICE_PERF_MAP";

/// Runtime settings.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where precompiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The three kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Reads streams.
    Source,
    /// Transforms batches.
    Filter,
    /// Writes streams.
    Sink,
}

impl PluginKind {
    /// `source`, `filter` or `sink`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Source => "source",
            PluginKind::Filter => "filter",
            PluginKind::Sink => "sink",
        }
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Short name, e.g. `file`.
    pub name: String,
    /// The plugin's semver.
    pub version: String,
    /// Its kind.
    pub kind: PluginKind,
    /// One line for `sluice plugin list`.
    pub description: String,
    /// JSON Schema of its config.
    pub config_schema: serde_json::Value,
    /// Capabilities it asks for.
    pub capabilities: Vec<String>,
}

/// How a plugin was loaded: shown to users so a cold start is explained.
#[derive(Debug, Clone, Copy)]
pub struct LoadReport {
    /// Whether the precompiled component came from the cache.
    pub from_cache: bool,
    /// Time to read, compile or deserialize, and link.
    pub elapsed: Duration,
}

/// Advances the engine's epoch until dropped. The runtime and every plugin
/// loaded from it hold it, so deadlines keep ticking for as long as any
/// plugin can be called, whatever outlives what.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The wasmtime engine, linker and component cache; one per process.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Option<ComponentCache>,
    call_times: Arc<CallTimes>,
    ticker: Arc<EpochTicker>,
}

impl Runtime {
    /// Build the engine (epoch interruption on) and the linker with every
    /// host capability.
    ///
    /// # Errors
    /// When wasmtime cannot be set up on this machine.
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let load_err = |message: String| Error::Load {
            plugin: "-".into(),
            path: "-".into(),
            message,
        };
        let mut wasm_config = Config::new();
        wasm_config.wasm_component_model(true);
        wasm_config.epoch_interruption(true);
        // `perf record` of a run then names each plugin function
        // (/tmp/perf-<pid>.map): how a connector author finds a hot loop.
        if std::env::var_os(PERF_MAP_VAR).is_some() {
            wasm_config.profiler(ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm_config).map_err(|e| load_err(e.to_string()))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| load_err(e.to_string()))?;
        // Outgoing HTTP: every request goes through the instance's grant.
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| load_err(e.to_string()))?;
        // Waiting WASI calls end at the call's deadline, as running code does.
        crate::capability::blocking::add_to_linker(&mut linker)
            .map_err(|e| load_err(e.to_string()))?;
        add_plugin_imports(&mut linker).map_err(|e| load_err(e.to_string()))?;

        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = stop.clone();
            let engine = engine.clone();
            std::thread::Builder::new()
                .name("sluice-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| Error::Io {
                    context: "starting the epoch thread".into(),
                    error: e,
                })?;
        }
        let cache = config
            .cache_dir
            .map(|dir| ComponentCache::new(dir, &engine));
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            cache,
            call_times: Arc::new(CallTimes::default()),
            ticker: Arc::new(EpochTicker { stop }),
        })
    }

    /// How long the calls into every plugin loaded here have taken.
    pub fn call_times(&self) -> &CallTimes {
        &self.call_times
    }

    /// Load a plugin from a `.wasm` component file: from the cache when it
    /// was compiled before, then linked and asked for its `info()` under
    /// the default [`Limits`].
    ///
    /// # Errors
    /// When the file is missing, is not a component, imports something the
    /// host does not provide, exports no plugin interface, or fails `info()`.
    pub fn load(&self, path: &Path) -> Result<Plugin> {
        self.load_with(path, &Limits::default())
    }

    /// [`Runtime::load`], asking `info()` under `limits` (a job's `exec:`).
    ///
    /// # Errors
    /// As [`Runtime::load`].
    pub fn load_with(&self, path: &Path, limits: &Limits) -> Result<Plugin> {
        let started = Instant::now();
        let label = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let load_err = |message: String| Error::Load {
            plugin: label.clone(),
            path: path.display().to_string(),
            message,
        };
        let wasm = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
        let cached = self.cache.as_ref().and_then(|c| c.get(&self.engine, &wasm));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, &wasm)
                    .map_err(|e| load_err(format!("not a valid component: {e:?}")))?;
                if let Some(cache) = &self.cache {
                    cache.put(&wasm, &component);
                }
                component
            }
        };
        let wit = wit_versions(&component, &self.engine);
        let Some(version) = wit.last().cloned() else {
            return Err(load_err(format!(
                "exports no sluice:plugin interface: is it a Sluice plugin? \
                 (this host serves sluice:plugin@{})",
                served_range()
            )));
        };
        if let Some(other) = wit.iter().find(|v| !wit_compatible(v)) {
            return Err(load_err(format!(
                "it was built against sluice:plugin@{other}, but this host serves \
                 sluice:plugin@{}: rebuild the plugin with a sluice-sdk for \
                 {WIT_VERSION}, or run it on a sluice that serves {other}",
                served_range()
            )));
        }
        let served = |v: &String| WitVersion::serving(v);
        let wit_version = served(&version).expect("checked compatible above");
        if wit.iter().any(|v| served(v) != Some(wit_version)) {
            return Err(load_err(format!(
                "it mixes versions of sluice:plugin ({}): build it against one",
                wit.join(", ")
            )));
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            load_err(format!(
                "cannot link against sluice:plugin@{version}: {e:?}"
            ))
        })?;
        let exports = ExportIndices::new(&pre, wit_version);
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                label: label.clone(),
                path: path.to_path_buf(),
                pre,
                exports,
                wit: version,
                info: None,
                call_times: self.call_times.clone(),
                _ticker: self.ticker.clone(),
                report: LoadReport {
                    from_cache,
                    elapsed: Duration::ZERO,
                },
            }),
        };
        let info = plugin.query_info(limits)?;
        let inner = Arc::get_mut(&mut plugin.inner).expect("not shared yet");
        inner.info = Some(info);
        inner.report.elapsed = started.elapsed();
        tracing::debug!(
            plugin = %label,
            from_cache,
            ms = inner.report.elapsed.as_millis() as u64,
            "plugin loaded"
        );
        Ok(plugin)
    }
}

struct PluginInner {
    label: String,
    path: PathBuf,
    pre: InstancePre<HostState>,
    exports: ExportIndices,
    wit: String,
    info: Option<PluginInfo>,
    report: LoadReport,
    call_times: Arc<CallTimes>,
    /// Keeps the epoch advancing while this plugin can be called.
    _ticker: Arc<EpochTicker>,
}

/// A compiled, linked plugin; cheap to clone and to instantiate per task.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl Plugin {
    /// What the plugin said about itself.
    pub fn info(&self) -> &PluginInfo {
        self.inner.info.as_ref().expect("set by Runtime::load")
    }

    /// The version of the `sluice:plugin` WIT package it was built against.
    pub fn wit_version(&self) -> &str {
        &self.inner.wit
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How it was loaded.
    pub fn load_report(&self) -> LoadReport {
        self.inner.report
    }

    /// The name used in errors.
    pub fn name(&self) -> &str {
        self.inner
            .info
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or(&self.inner.label)
    }

    /// Where its instances count how long their calls take.
    pub(crate) fn call_times(&self) -> &CallTimes {
        &self.inner.call_times
    }

    pub(crate) fn new_store(&self, grants: Arc<Grants>, limits: &Limits) -> Store<HostState> {
        let state = HostState::new(
            Arc::from(self.name()),
            grants,
            limits.memory_bytes,
            limits.caps,
        );
        let mut store = Store::new(self.inner.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(limits.caps.per_call_bytes());
        store.epoch_deadline_trap();
        arm(&mut store, limits, Instant::now());
        store
    }

    pub(crate) fn instantiate(
        &self,
        store: &mut Store<HostState>,
        limits: &Limits,
    ) -> Result<wasmtime::component::Instance> {
        arm(store, limits, Instant::now());
        match crate::panic::catch(|| self.inner.pre.instantiate(&mut *store)) {
            Ok(instantiated) => {
                instantiated.map_err(|e| call_error(self.name(), "instantiate", e, store, limits))
            }
            Err(message) => Err(Error::HostPanic {
                plugin: self.name().into(),
                call: "instantiate".into(),
                message,
            }),
        }
    }

    fn query_info(&self, limits: &Limits) -> Result<PluginInfo> {
        let mut store = self.new_store(Arc::new(Grants::default()), limits);
        let instance = self.instantiate(&mut store, limits)?;
        let label = self.inner.label.clone();
        let err = |e: wasmtime::Error, store: &mut Store<HostState>| {
            call_error(&label, "info", e, store, limits)
        };
        match crate::panic::catch(|| self.call_info(&mut store, &instance, &err)) {
            Ok(raw) => {
                let info = self.checked_info(raw?, limits)?;
                crate::call_log::export(info.kind.as_str(), "info");
                Ok(info)
            }
            Err(message) => Err(Error::HostPanic {
                plugin: label.clone(),
                call: "info".into(),
                message,
            }),
        }
    }

    /// Call the `info()` of whichever interface the component exports.
    fn call_info(
        &self,
        store: &mut Store<HostState>,
        instance: &wasmtime::component::Instance,
        err: &dyn Fn(wasmtime::Error, &mut Store<HostState>) -> Error,
    ) -> Result<bindings::types::PluginInfo> {
        let label = self.inner.label.clone();
        let instance = *instance;
        let exports = &self.inner.exports;
        let raw = if let Some(ix) = &exports.source {
            let guest = ix.load(&mut *store, &instance).map_err(|e| err(e, store))?;
            guest.call_info(&mut *store).map_err(|e| err(e, store))?
        } else if let Some(ix) = &exports.filter {
            let guest = ix.load(&mut *store, &instance).map_err(|e| err(e, store))?;
            guest.call_info(&mut *store).map_err(|e| err(e, store))?
        } else if let Some(ix) = &exports.sink {
            let guest = ix.load(&mut *store, &instance).map_err(|e| err(e, store))?;
            guest.call_info(&mut *store).map_err(|e| err(e, store))?
        } else {
            return Err(Error::Load {
                plugin: label,
                path: self.inner.path.display().to_string(),
                message: format!(
                    "exports none of sluice:plugin/source, filter or sink @{}",
                    self.inner.wit
                ),
            });
        };
        Ok(raw)
    }

    /// What `info()` returned, checked: the kind it claims exported, text
    /// within its caps, a config schema that is a JSON Schema.
    fn checked_info(
        &self,
        raw: bindings::types::PluginInfo,
        limits: &Limits,
    ) -> Result<PluginInfo> {
        let label = self.inner.label.clone();
        let exports = &self.inner.exports;
        let invalid = |message: String| Error::InvalidOutput {
            plugin: label.clone(),
            call: "info".into(),
            message,
        };
        let caps = limits.caps;
        for (what, text) in [
            ("the plugin name", &raw.name),
            ("the version", &raw.version),
        ]
        .into_iter()
        .chain(raw.capabilities.iter().map(|c| ("a capability name", c)))
        {
            within(what, text.len(), caps.name_bytes, setting::NAME).map_err(&invalid)?;
        }
        within(
            "the config schema",
            raw.config_schema.len(),
            caps.schema_bytes,
            setting::SCHEMA,
        )
        .map_err(&invalid)?;
        let kind = match raw.kind {
            bindings::types::PluginKind::Source => PluginKind::Source,
            bindings::types::PluginKind::Filter => PluginKind::Filter,
            bindings::types::PluginKind::Sink => PluginKind::Sink,
        };
        let has_export = match kind {
            PluginKind::Source => exports.source.is_some(),
            PluginKind::Filter => exports.filter.is_some(),
            PluginKind::Sink => exports.sink.is_some(),
        };
        if !has_export {
            return Err(invalid(format!(
                "says it is a {} but does not export that interface",
                kind.as_str()
            )));
        }
        let config_schema: serde_json::Value = serde_json::from_str(&raw.config_schema)
            .map_err(|e| invalid(format!("config-schema is not JSON: {e}")))?;
        jsonschema::validator_for(&config_schema)
            .map_err(|e| invalid(format!("config-schema is not a valid JSON Schema: {e}")))?;
        Ok(PluginInfo {
            name: raw.name,
            version: raw.version,
            kind,
            description: truncate_message(raw.description, caps.message_bytes),
            config_schema,
            capabilities: raw.capabilities,
        })
    }

    fn expect_kind(&self, kind: PluginKind) -> Result<()> {
        let actual = self.info().kind;
        if actual == kind {
            Ok(())
        } else {
            Err(Error::WrongKind {
                plugin: self.name().to_string(),
                expected: kind.as_str(),
                actual: actual.as_str(),
            })
        }
    }

    /// Check `config` against the plugin's JSON Schema. Errors name the path
    /// in the job file: `config_path` is where the config sits (`sink.config`).
    ///
    /// # Errors
    /// [`Error::Config`] listing every violation.
    pub fn validate_config(&self, config: &serde_json::Value, config_path: &str) -> Result<()> {
        let validator = jsonschema::validator_for(&self.info().config_schema).map_err(|e| {
            Error::InvalidOutput {
                plugin: self.name().to_string(),
                call: "info".into(),
                message: e.to_string(),
            }
        })?;
        let problems: Vec<String> = validator
            .iter_errors(config)
            .map(|e| {
                let pointer = e.instance_path().to_string();
                let at = pointer.trim_start_matches('/').replace('/', ".");
                if at.is_empty() {
                    format!("{config_path}: {e}")
                } else {
                    format!("{config_path}.{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                path: format!("plugin {}", self.name()),
                message: problems.join("; "),
            })
        }
    }

    /// A fresh store and instance for a task of plugin kind `kind`.
    fn sandbox(
        &self,
        kind: PluginKind,
        grants: Arc<Grants>,
        limits: Limits,
    ) -> Result<(Sandbox, wasmtime::component::Instance)> {
        self.expect_kind(kind)?;
        let mut store = self.new_store(grants, &limits);
        let instance = self.instantiate(&mut store, &limits)?;
        Ok((Sandbox::new(self.clone(), store, limits), instance))
    }

    /// A sandboxed source instance for one task.
    ///
    /// # Errors
    /// When the plugin is not a source or fails to instantiate.
    pub fn source(&self, grants: Arc<Grants>, limits: Limits) -> Result<SourceInstance> {
        let (mut sandbox, instance) = self.sandbox(PluginKind::Source, grants, limits)?;
        let ix = self.inner.exports.source.as_ref().expect("checked by info");
        let guest = sandbox.load(|store| ix.load(store, &instance))?;
        Ok(SourceInstance::new(sandbox, guest))
    }

    /// A sandboxed filter instance for one task.
    ///
    /// # Errors
    /// When the plugin is not a filter or fails to instantiate.
    pub fn filter(&self, grants: Arc<Grants>, limits: Limits) -> Result<FilterInstance> {
        let (mut sandbox, instance) = self.sandbox(PluginKind::Filter, grants, limits)?;
        let ix = self.inner.exports.filter.as_ref().expect("checked by info");
        let guest = sandbox.load(|store| ix.load(store, &instance))?;
        Ok(FilterInstance::new(sandbox, guest))
    }

    /// A sandboxed sink instance for one task.
    ///
    /// # Errors
    /// When the plugin is not a sink or fails to instantiate.
    pub fn sink(&self, grants: Arc<Grants>, limits: Limits) -> Result<SinkInstance> {
        let (mut sandbox, instance) = self.sandbox(PluginKind::Sink, grants, limits)?;
        let ix = self.inner.exports.sink.as_ref().expect("checked by info");
        let guest = sandbox.load(|store| ix.load(store, &instance))?;
        Ok(SinkInstance::new(sandbox, guest))
    }
}

pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

#[cfg(test)]
mod wit_tests {
    use super::*;

    #[test]
    fn wit_versions_are_compatible_like_semver() {
        assert!(wit_compatible("0.1.0"));
        assert!(wit_compatible("0.1.7"));
        assert!(wit_compatible("0.2.0"));
        assert!(!wit_compatible("0.3.0"));
        assert!(!wit_compatible("1.0.0"));
        assert!(!wit_compatible("garbage"));
        assert_eq!(WIT_VERSION, "0.2.0");
        assert_eq!(served_range(), "0.2.x or 0.1.x");
    }
}
