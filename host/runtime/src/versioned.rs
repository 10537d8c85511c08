//! A plugin's exports, whichever version of `sluice:plugin` it was built
//! against.
//!
//! The pipeline only ever sees the 0.2.0 types. A 0.1.0 component's
//! exports are found under their 0.1.0 names and what they return is
//! converted here, at the boundary; records shared through `types` (errors,
//! `plugin-info`, batches) are the same Rust types in both versions already.

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre, ResourceAny};

use crate::bindings::{filter, sink, source, types, v0_1};
use crate::capability::HostState;

/// The versions of `sluice:plugin` this host serves, newest first.
pub const WIT_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// Which served version a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WitVersion {
    V0_1,
    V0_2,
}

impl WitVersion {
    /// The served version compatible with `found` (`0.1.3` → 0.1), as
    /// semver has it below 1.0: the same minor.
    pub(crate) fn serving(found: &str) -> Option<WitVersion> {
        let mut it = found.split(['.', '-', '+']);
        let major: u64 = it.next()?.parse().ok()?;
        let minor: u64 = it.next()?.parse().ok()?;
        match (major, minor) {
            (0, 1) => Some(WitVersion::V0_1),
            (0, 2) => Some(WitVersion::V0_2),
            _ => None,
        }
    }
}

type Call<T> = wasmtime::Result<Result<T, types::Error>>;

/// Where a component's exports sit, found once per component.
pub(crate) struct ExportIndices {
    pub(crate) source: Option<SourceIndices>,
    pub(crate) filter: Option<FilterIndices>,
    pub(crate) sink: Option<SinkIndices>,
}

impl ExportIndices {
    pub(crate) fn new(pre: &InstancePre<HostState>, version: WitVersion) -> ExportIndices {
        match version {
            WitVersion::V0_2 => ExportIndices {
                source: source::GuestIndices::new(pre).ok().map(SourceIndices::V0_2),
                filter: filter::GuestIndices::new(pre).ok().map(FilterIndices::V0_2),
                sink: sink::GuestIndices::new(pre).ok().map(SinkIndices::V0_2),
            },
            WitVersion::V0_1 => ExportIndices {
                source: v0_1::source::GuestIndices::new(pre)
                    .ok()
                    .map(SourceIndices::V0_1),
                filter: v0_1::filter::GuestIndices::new(pre)
                    .ok()
                    .map(FilterIndices::V0_1),
                sink: v0_1::sink::GuestIndices::new(pre)
                    .ok()
                    .map(SinkIndices::V0_1),
            },
        }
    }
}

/// Declares `<Kind>Indices` and `<Kind>Guest` over both versions, with
/// `load` and `call_info` (the same in every kind).
macro_rules! versioned_export {
    ($indices:ident, $guest:ident, $new:ident, $old:ident) => {
        pub(crate) enum $indices {
            V0_2($new::GuestIndices),
            V0_1(v0_1::$old::GuestIndices),
        }

        impl $indices {
            pub(crate) fn load(
                &self,
                store: &mut Store<HostState>,
                instance: &Instance,
            ) -> wasmtime::Result<$guest> {
                Ok(match self {
                    Self::V0_2(ix) => $guest::V0_2(ix.load(store, instance)?),
                    Self::V0_1(ix) => $guest::V0_1(ix.load(store, instance)?),
                })
            }
        }

        pub(crate) enum $guest {
            V0_2($new::Guest),
            V0_1(v0_1::$old::Guest),
        }

        impl $guest {
            pub(crate) fn call_info(
                &self,
                store: &mut Store<HostState>,
            ) -> wasmtime::Result<types::PluginInfo> {
                match self {
                    Self::V0_2(g) => g.call_info(store),
                    Self::V0_1(g) => g.call_info(store),
                }
            }
        }
    };
}

versioned_export!(SourceIndices, SourceGuest, source, source);
versioned_export!(FilterIndices, FilterGuest, filter, filter);
versioned_export!(SinkIndices, SinkGuest, sink, sink);

impl SourceGuest {
    pub(crate) fn call_check(&self, store: &mut Store<HostState>, config: &str) -> Call<()> {
        match self {
            Self::V0_2(g) => g.call_check(store, config),
            Self::V0_1(g) => g.call_check(store, config),
        }
    }

    pub(crate) fn call_discover(
        &self,
        store: &mut Store<HostState>,
        config: &str,
    ) -> Call<Vec<source::StreamInfo>> {
        match self {
            Self::V0_2(g) => g.call_discover(store, config),
            Self::V0_1(g) => Ok(g
                .call_discover(store, config)?
                .map(|streams| streams.into_iter().map(Into::into).collect())),
        }
    }

    pub(crate) fn call_partitions(
        &self,
        store: &mut Store<HostState>,
        config: &str,
        stream: &str,
        state: Option<&str>,
    ) -> Call<Vec<source::Partition>> {
        match self {
            Self::V0_2(g) => g.call_partitions(store, config, stream, state),
            Self::V0_1(g) => Ok(g
                .call_partitions(store, config, stream, state)?
                .map(|parts| parts.into_iter().map(Into::into).collect())),
        }
    }

    pub(crate) fn call_reader_open(
        &self,
        store: &mut Store<HostState>,
        config: &str,
        partition: &source::Partition,
        state: Option<&str>,
    ) -> Call<ResourceAny> {
        match self {
            Self::V0_2(g) => g.reader().call_open(store, config, partition, state),
            Self::V0_1(g) => {
                let partition = v0_1::source::Partition {
                    stream: partition.stream.clone(),
                    id: partition.id.clone(),
                    spec: partition.spec.clone(),
                };
                g.reader().call_open(store, config, &partition, state)
            }
        }
    }

    pub(crate) fn call_reader_next(
        &self,
        store: &mut Store<HostState>,
        reader: ResourceAny,
    ) -> Call<Option<source::Event>> {
        match self {
            Self::V0_2(g) => g.reader().call_next(store, reader),
            Self::V0_1(g) => Ok(g
                .reader()
                .call_next(store, reader)?
                .map(|event| event.map(Into::into))),
        }
    }
}

impl FilterGuest {
    pub(crate) fn call_open(
        &self,
        store: &mut Store<HostState>,
        config: &str,
        input_schema: &[u8],
    ) -> Call<ResourceAny> {
        match self {
            Self::V0_2(g) => g.transformer().call_open(store, config, input_schema),
            Self::V0_1(g) => g.transformer().call_open(store, config, input_schema),
        }
    }

    pub(crate) fn call_output_schema(
        &self,
        store: &mut Store<HostState>,
        transformer: ResourceAny,
    ) -> wasmtime::Result<Vec<u8>> {
        match self {
            Self::V0_2(g) => g.transformer().call_output_schema(store, transformer),
            Self::V0_1(g) => g.transformer().call_output_schema(store, transformer),
        }
    }

    pub(crate) fn call_plan(
        &self,
        store: &mut Store<HostState>,
        transformer: ResourceAny,
    ) -> wasmtime::Result<Option<filter::Plan>> {
        match self {
            Self::V0_2(g) => g.transformer().call_plan(store, transformer),
            Self::V0_1(g) => Ok(g
                .transformer()
                .call_plan(store, transformer)?
                .map(Into::into)),
        }
    }

    pub(crate) fn call_keep(
        &self,
        store: &mut Store<HostState>,
        transformer: ResourceAny,
        columns: wasmtime::component::Resource<crate::batch::Batch>,
    ) -> Call<Vec<u8>> {
        match self {
            Self::V0_2(g) => g.transformer().call_keep(store, transformer, columns),
            Self::V0_1(g) => g.transformer().call_keep(store, transformer, columns),
        }
    }

    pub(crate) fn call_compute(
        &self,
        store: &mut Store<HostState>,
        transformer: ResourceAny,
        columns: wasmtime::component::Resource<crate::batch::Batch>,
    ) -> Call<wasmtime::component::Resource<crate::batch::Batch>> {
        match self {
            Self::V0_2(g) => g.transformer().call_compute(store, transformer, columns),
            Self::V0_1(g) => g.transformer().call_compute(store, transformer, columns),
        }
    }

    pub(crate) fn call_process(
        &self,
        store: &mut Store<HostState>,
        transformer: ResourceAny,
        batch: wasmtime::component::Resource<crate::batch::Batch>,
    ) -> Call<Vec<wasmtime::component::Resource<crate::batch::Batch>>> {
        match self {
            Self::V0_2(g) => g.transformer().call_process(store, transformer, batch),
            Self::V0_1(g) => g.transformer().call_process(store, transformer, batch),
        }
    }

    pub(crate) fn call_finish(
        &self,
        store: &mut Store<HostState>,
        transformer: ResourceAny,
    ) -> Call<Vec<wasmtime::component::Resource<crate::batch::Batch>>> {
        match self {
            Self::V0_2(g) => g.transformer().call_finish(store, transformer),
            Self::V0_1(g) => g.transformer().call_finish(store, transformer),
        }
    }
}

impl SinkGuest {
    pub(crate) fn call_check(&self, store: &mut Store<HostState>, config: &str) -> Call<()> {
        match self {
            Self::V0_2(g) => g.call_check(store, config),
            Self::V0_1(g) => g.call_check(store, config),
        }
    }

    pub(crate) fn call_begin_stream(
        &self,
        store: &mut Store<HostState>,
        config: &str,
        stream: &str,
        fresh: bool,
    ) -> Call<()> {
        match self {
            Self::V0_2(g) => g.call_begin_stream(store, config, stream, fresh),
            Self::V0_1(g) => g.call_begin_stream(store, config, stream, fresh),
        }
    }

    pub(crate) fn call_finish_stream(
        &self,
        store: &mut Store<HostState>,
        config: &str,
        stream: &str,
    ) -> Call<Vec<String>> {
        match self {
            Self::V0_2(g) => g.call_finish_stream(store, config, stream),
            Self::V0_1(g) => g.call_finish_stream(store, config, stream),
        }
    }

    pub(crate) fn call_open(
        &self,
        store: &mut Store<HostState>,
        config: &str,
        stream: &str,
        schema: &[u8],
        task: &str,
    ) -> Call<ResourceAny> {
        match self {
            Self::V0_2(g) => g.writer().call_open(store, config, stream, schema, task),
            Self::V0_1(g) => g.writer().call_open(store, config, stream, schema, task),
        }
    }

    pub(crate) fn call_write(
        &self,
        store: &mut Store<HostState>,
        writer: ResourceAny,
        batch: wasmtime::component::Resource<crate::batch::Batch>,
    ) -> Call<()> {
        match self {
            Self::V0_2(g) => g.writer().call_write(store, writer, batch),
            Self::V0_1(g) => g.writer().call_write(store, writer, batch),
        }
    }

    pub(crate) fn call_commit(
        &self,
        store: &mut Store<HostState>,
        writer: ResourceAny,
    ) -> Call<sink::CommitInfo> {
        match self {
            Self::V0_2(g) => g.writer().call_commit(store, writer),
            Self::V0_1(g) => Ok(g.writer().call_commit(store, writer)?.map(Into::into)),
        }
    }

    pub(crate) fn call_abort(
        &self,
        store: &mut Store<HostState>,
        writer: ResourceAny,
    ) -> wasmtime::Result<()> {
        match self {
            Self::V0_2(g) => g.writer().call_abort(store, writer),
            Self::V0_1(g) => g.writer().call_abort(store, writer),
        }
    }
}

// What 0.1.0 exports return, as the 0.2.0 types. The records are the same
// field by field; the conversions exist because each `bindgen!` makes its
// own Rust types for an export interface's records.

impl From<v0_1::source::SyncMode> for source::SyncMode {
    fn from(mode: v0_1::source::SyncMode) -> Self {
        match mode {
            v0_1::source::SyncMode::FullRefresh => source::SyncMode::FullRefresh,
            v0_1::source::SyncMode::Incremental => source::SyncMode::Incremental,
        }
    }
}

impl From<v0_1::source::StreamInfo> for source::StreamInfo {
    fn from(s: v0_1::source::StreamInfo) -> Self {
        source::StreamInfo {
            name: s.name,
            schema: s.schema,
            primary_key: s.primary_key,
            cursor_fields: s.cursor_fields,
            sync_modes: s.sync_modes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<v0_1::source::Partition> for source::Partition {
    fn from(p: v0_1::source::Partition) -> Self {
        source::Partition {
            stream: p.stream,
            id: p.id,
            spec: p.spec,
        }
    }
}

impl From<v0_1::source::Event> for source::Event {
    fn from(event: v0_1::source::Event) -> Self {
        match event {
            v0_1::source::Event::Batch(batch) => source::Event::Batch(batch),
            v0_1::source::Event::Checkpoint(state) => source::Event::Checkpoint(state),
        }
    }
}

impl From<v0_1::filter::OutputColumn> for filter::OutputColumn {
    fn from(column: v0_1::filter::OutputColumn) -> Self {
        match column {
            v0_1::filter::OutputColumn::Input(i) => filter::OutputColumn::Input(i),
            v0_1::filter::OutputColumn::Computed(k) => filter::OutputColumn::Computed(k),
        }
    }
}

impl From<v0_1::filter::Plan> for filter::Plan {
    fn from(plan: v0_1::filter::Plan) -> Self {
        filter::Plan {
            keep_reads: plan.keep_reads,
            compute_reads: plan.compute_reads,
            columns: plan.columns.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<v0_1::sink::CommitInfo> for sink::CommitInfo {
    fn from(info: v0_1::sink::CommitInfo) -> Self {
        sink::CommitInfo {
            rows: info.rows,
            bytes: info.bytes,
            outputs: info.outputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_served_by_minor_below_one() {
        assert_eq!(WitVersion::serving("0.1.0"), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::serving("0.1.7"), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::serving("0.2.0"), Some(WitVersion::V0_2));
        assert_eq!(WitVersion::serving("0.2.1-rc1"), Some(WitVersion::V0_2));
        assert_eq!(WitVersion::serving("0.3.0"), None);
        assert_eq!(WitVersion::serving("1.0.0"), None);
        assert_eq!(WitVersion::serving("garbage"), None);
    }
}
