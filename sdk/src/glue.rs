//! Adapters from the author's traits to the generated WIT exports.
//!
//! The SDK builds the `plugin` world, which exports all three interfaces;
//! the two a plugin does not implement answer with "unsupported", and every
//! `info()` reports the real kind so the host uses the right one.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::__wit::exports::sluice::plugin0_2_0::{filter, sink, source};
use crate::__wit::sluice::plugin0_2_0::types as wit;
use crate::batch::{Batch, decode_schema, encode_schema};
use crate::traits::{config_schema, parse_config};
use crate::{
    Error, Event, Filter, Info, OutputColumn, Partition, Plan, Reader, Sink, Source, SyncMode,
    Transformer, Writer,
};

fn plugin_info(info: Info, kind: wit::PluginKind, schema: String) -> wit::PluginInfo {
    wit::PluginInfo {
        name: info.name.into(),
        version: info.version.into(),
        kind,
        description: info.description.into(),
        config_schema: schema,
        capabilities: info.capabilities.iter().map(|c| c.to_string()).collect(),
    }
}

/// Stands in for the resources of the interfaces a plugin does not implement.
pub struct Unsupported;

impl source::GuestReader for Unsupported {
    fn open(
        _config: String,
        _partition: source::Partition,
        _state: Option<String>,
    ) -> Result<source::Reader, wit::Error> {
        Err(Error::unsupported("reading (this plugin is not a source)").into())
    }
    fn next(&self) -> Result<Option<source::Event>, wit::Error> {
        Err(Error::unsupported("reading").into())
    }
}

impl filter::GuestTransformer for Unsupported {
    fn open(_config: String, _input: Vec<u8>) -> Result<filter::Transformer, wit::Error> {
        Err(Error::unsupported("transforming (this plugin is not a filter)").into())
    }
    fn output_schema(&self) -> Vec<u8> {
        Vec::new()
    }
    fn plan(&self) -> Option<filter::Plan> {
        None
    }
    fn keep(&self, _columns: wit::Batch) -> Result<Vec<u8>, wit::Error> {
        Err(Error::unsupported("transforming").into())
    }
    fn compute(&self, _columns: wit::Batch) -> Result<wit::Batch, wit::Error> {
        Err(Error::unsupported("transforming").into())
    }
    fn process(&self, _batch: wit::Batch) -> Result<Vec<wit::Batch>, wit::Error> {
        Err(Error::unsupported("transforming").into())
    }
    fn finish(&self) -> Result<Vec<wit::Batch>, wit::Error> {
        Err(Error::unsupported("transforming").into())
    }
}

impl sink::GuestWriter for Unsupported {
    fn open(
        _config: String,
        _stream: String,
        _schema: Vec<u8>,
        _task: String,
    ) -> Result<sink::Writer, wit::Error> {
        Err(Error::unsupported("writing (this plugin is not a sink)").into())
    }
    fn write(&self, _batch: wit::Batch) -> Result<(), wit::Error> {
        Err(Error::unsupported("writing").into())
    }
    fn commit(&self) -> Result<sink::CommitInfo, wit::Error> {
        Err(Error::unsupported("writing").into())
    }
    fn abort(&self) {}
}

/// Implements the "other" exports for plugin kind `$plugin`, reporting `$info`.
macro_rules! other_exports {
    ($plugin:ident, $bound:ident, $kind:expr, [$($other:ident),*]) => {
        $( other_exports!(@one $other, $plugin, $bound, $kind); )*
    };
    (@one source, $plugin:ident, $bound:ident, $kind:expr) => {
        impl<T: $bound> source::Guest for $plugin<T> {
            type Reader = Unsupported;
            fn info() -> wit::PluginInfo {
                plugin_info(T::info(), $kind, config_schema::<T::Config>())
            }
            fn check(_config: String) -> Result<(), wit::Error> {
                Err(Error::unsupported("source check").into())
            }
            fn discover(_config: String) -> Result<Vec<source::StreamInfo>, wit::Error> {
                Err(Error::unsupported("discover").into())
            }
            fn partitions(
                _config: String,
                _stream: String,
                _state: Option<String>,
            ) -> Result<Vec<source::Partition>, wit::Error> {
                Err(Error::unsupported("partitions").into())
            }
        }
    };
    (@one filter, $plugin:ident, $bound:ident, $kind:expr) => {
        impl<T: $bound> filter::Guest for $plugin<T> {
            type Transformer = Unsupported;
            fn info() -> wit::PluginInfo {
                plugin_info(T::info(), $kind, config_schema::<T::Config>())
            }
        }
    };
    (@one sink, $plugin:ident, $bound:ident, $kind:expr) => {
        impl<T: $bound> sink::Guest for $plugin<T> {
            type Writer = Unsupported;
            fn info() -> wit::PluginInfo {
                plugin_info(T::info(), $kind, config_schema::<T::Config>())
            }
            fn check(_config: String) -> Result<(), wit::Error> {
                Err(Error::unsupported("sink check").into())
            }
            fn begin_stream(
                _config: String,
                _stream: String,
                _fresh: bool,
            ) -> Result<(), wit::Error> {
                Err(Error::unsupported("writing").into())
            }
            fn finish_stream(_config: String, _stream: String) -> Result<Vec<String>, wit::Error> {
                Err(Error::unsupported("writing").into())
            }
        }
    };
}

// ---- sources ----

/// Exports a [`Source`]; named by [`export_source!`](crate::export_source).
pub struct SourcePlugin<T>(PhantomData<T>);

/// A [`Reader`] behind the WIT `reader` resource.
pub struct ReaderAdapter<T: Source>(RefCell<T::Reader>);

impl<T: Source> source::Guest for SourcePlugin<T> {
    type Reader = ReaderAdapter<T>;

    fn info() -> wit::PluginInfo {
        plugin_info(
            T::info(),
            wit::PluginKind::Source,
            config_schema::<T::Config>(),
        )
    }

    fn check(config: String) -> Result<(), wit::Error> {
        let config: T::Config = parse_config(&config)?;
        Ok(T::check(&config)?)
    }

    fn discover(config: String) -> Result<Vec<source::StreamInfo>, wit::Error> {
        let config: T::Config = parse_config(&config)?;
        Ok(T::discover(&config)?
            .into_iter()
            .map(|s| source::StreamInfo {
                name: s.name,
                schema: s.schema.map(|s| encode_schema(&s)).unwrap_or_default(),
                primary_key: s.primary_key,
                cursor_fields: s.cursor_fields,
                sync_modes: s
                    .sync_modes
                    .into_iter()
                    .map(|m| match m {
                        SyncMode::FullRefresh => source::SyncMode::FullRefresh,
                        SyncMode::Incremental => source::SyncMode::Incremental,
                    })
                    .collect(),
            })
            .collect())
    }

    fn partitions(
        config: String,
        stream: String,
        state: Option<String>,
    ) -> Result<Vec<source::Partition>, wit::Error> {
        let config: T::Config = parse_config(&config)?;
        Ok(T::partitions(&config, &stream, state.as_deref())?
            .into_iter()
            .map(|p| source::Partition {
                stream: p.stream,
                id: p.id,
                spec: p.spec,
            })
            .collect())
    }
}

impl<T: Source> source::GuestReader for ReaderAdapter<T> {
    fn open(
        config: String,
        partition: source::Partition,
        state: Option<String>,
    ) -> Result<source::Reader, wit::Error> {
        let config: T::Config = parse_config(&config)?;
        let partition = Partition {
            stream: partition.stream,
            id: partition.id,
            spec: partition.spec,
        };
        let reader = T::open(config, partition, state)?;
        Ok(source::Reader::new(ReaderAdapter::<T>(RefCell::new(
            reader,
        ))))
    }

    fn next(&self) -> Result<Option<source::Event>, wit::Error> {
        Ok(match self.0.borrow_mut().next()? {
            None => None,
            Some(Event::Batch(batch)) => Some(source::Event::Batch(batch.into_wit())),
            Some(Event::Checkpoint(state)) => Some(source::Event::Checkpoint(state)),
        })
    }
}

other_exports!(
    SourcePlugin,
    Source,
    wit::PluginKind::Source,
    [filter, sink]
);

// ---- filters ----

/// Exports a [`Filter`]; named by [`export_filter!`](crate::export_filter).
pub struct FilterPlugin<T>(PhantomData<T>);

/// A [`Transformer`] behind the WIT `transformer` resource, with the
/// schemas of what it is given (known at open, so never sent again): the
/// whole input for `process`, or the columns its plan's `keep` and
/// `compute` read.
pub struct TransformerAdapter<T: Filter> {
    transformer: RefCell<T::Transformer>,
    input: SchemaRef,
    keep_input: SchemaRef,
    compute_input: SchemaRef,
    plan: Option<Plan>,
}

impl<T: Filter> filter::Guest for FilterPlugin<T> {
    type Transformer = TransformerAdapter<T>;

    fn info() -> wit::PluginInfo {
        plugin_info(
            T::info(),
            wit::PluginKind::Filter,
            config_schema::<T::Config>(),
        )
    }
}

fn hand_over(batches: Vec<arrow_array::RecordBatch>) -> Result<Vec<wit::Batch>, wit::Error> {
    batches
        .iter()
        .map(|b| Ok(Batch::from_record_batch(b)?.into_wit()))
        .collect()
}

impl<T: Filter> filter::GuestTransformer for TransformerAdapter<T> {
    fn open(config: String, input_schema: Vec<u8>) -> Result<filter::Transformer, wit::Error> {
        let config: T::Config = parse_config(&config)?;
        let input = decode_schema(&input_schema)?;
        let transformer = T::open(config, input.clone())?;
        let plan = transformer.plan();
        let columns = |reads: &[usize]| {
            input.project(reads).map(Arc::new).map_err(|e| {
                Error::internal(format!("the plan reads a column the input lacks: {e}"))
            })
        };
        let (keep_input, compute_input) = match &plan {
            Some(plan) => (
                columns(plan.keep_reads.as_deref().unwrap_or_default())?,
                columns(&plan.compute_reads)?,
            ),
            None => (columns(&[])?, columns(&[])?),
        };
        Ok(filter::Transformer::new(TransformerAdapter::<T> {
            transformer: RefCell::new(transformer),
            input,
            keep_input,
            compute_input,
            plan,
        }))
    }

    fn output_schema(&self) -> Vec<u8> {
        encode_schema(&self.transformer.borrow().output_schema())
    }

    fn plan(&self) -> Option<filter::Plan> {
        let index = |i: usize| u32::try_from(i).expect("fewer than 2^32 columns");
        let indexes = |reads: &[usize]| reads.iter().map(|&i| index(i)).collect();
        self.plan.as_ref().map(|p| filter::Plan {
            keep_reads: p.keep_reads.as_deref().map(indexes),
            compute_reads: indexes(&p.compute_reads),
            columns: p
                .columns
                .iter()
                .map(|c| match *c {
                    OutputColumn::Input(i) => filter::OutputColumn::Input(index(i)),
                    OutputColumn::Computed(k) => filter::OutputColumn::Computed(index(k)),
                })
                .collect(),
        })
    }

    fn keep(&self, columns: wit::Batch) -> Result<Vec<u8>, wit::Error> {
        let columns = Batch(columns).to_record_batch_with(&self.keep_input)?;
        let keep = self.transformer.borrow_mut().keep(columns)?;
        Ok(keep.sliced().as_slice().to_vec())
    }

    fn compute(&self, columns: wit::Batch) -> Result<wit::Batch, wit::Error> {
        let rows = Batch(columns).to_record_batch_with(&self.compute_input)?;
        let computed = self.transformer.borrow_mut().compute(rows)?;
        Ok(Batch::from_record_batch(&computed)?.into_wit())
    }

    fn process(&self, batch: wit::Batch) -> Result<Vec<wit::Batch>, wit::Error> {
        let batch = Batch(batch).to_record_batch_with(&self.input)?;
        let out = self.transformer.borrow_mut().process(batch)?;
        hand_over(out)
    }

    fn finish(&self) -> Result<Vec<wit::Batch>, wit::Error> {
        let out = self.transformer.borrow_mut().finish()?;
        hand_over(out)
    }
}

other_exports!(
    FilterPlugin,
    Filter,
    wit::PluginKind::Filter,
    [source, sink]
);

// ---- sinks ----

/// Exports a [`Sink`]; named by [`export_sink!`](crate::export_sink).
pub struct SinkPlugin<T>(PhantomData<T>);

/// A [`Writer`] behind the WIT `writer` resource.
pub struct WriterAdapter<T: Sink>(RefCell<T::Writer>);

impl<T: Sink> sink::Guest for SinkPlugin<T> {
    type Writer = WriterAdapter<T>;

    fn info() -> wit::PluginInfo {
        plugin_info(
            T::info(),
            wit::PluginKind::Sink,
            config_schema::<T::Config>(),
        )
    }

    fn check(config: String) -> Result<(), wit::Error> {
        let config: T::Config = parse_config(&config)?;
        Ok(T::check(&config)?)
    }

    fn begin_stream(config: String, stream: String, fresh: bool) -> Result<(), wit::Error> {
        let config: T::Config = parse_config(&config)?;
        Ok(T::begin_stream(&config, &stream, fresh)?)
    }

    fn finish_stream(config: String, stream: String) -> Result<Vec<String>, wit::Error> {
        let config: T::Config = parse_config(&config)?;
        Ok(T::finish_stream(&config, &stream)?)
    }
}

impl<T: Sink> sink::GuestWriter for WriterAdapter<T> {
    fn open(
        config: String,
        stream: String,
        schema: Vec<u8>,
        task: String,
    ) -> Result<sink::Writer, wit::Error> {
        let config: T::Config = parse_config(&config)?;
        let schema = decode_schema(&schema)?;
        let writer = T::open(config, &stream, schema, &task)?;
        Ok(sink::Writer::new(WriterAdapter::<T>(RefCell::new(writer))))
    }

    fn write(&self, batch: wit::Batch) -> Result<(), wit::Error> {
        Ok(self.0.borrow_mut().write(Batch(batch))?)
    }

    fn commit(&self) -> Result<sink::CommitInfo, wit::Error> {
        let info = self.0.borrow_mut().commit()?;
        Ok(sink::CommitInfo {
            rows: info.rows,
            bytes: info.bytes,
            outputs: info.outputs,
        })
    }

    fn abort(&self) {
        self.0.borrow_mut().abort();
    }
}

other_exports!(SinkPlugin, Sink, wit::PluginKind::Sink, [source, filter]);
