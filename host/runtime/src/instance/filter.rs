//! Filter instances: a transformer per task, row-wise (`process`) or
//! column-wise (`plan`, then `keep` and `compute`, assembled here).

use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_types::columnar::{self, ColumnWise, Failure, OutputColumn, Plan};
use wasmtime::component::{Resource, ResourceAny};

use super::Sandbox;
use crate::batch::{Batch, decode_schema, encode_schema};
use crate::bindings::filter;
use crate::error::Result;
use crate::limits::{setting, within};
use crate::versioned::FilterGuest;

/// A filter plugin instance for one task.
pub struct FilterInstance {
    sandbox: Sandbox,
    guest: FilterGuest,
}

impl FilterInstance {
    pub(crate) fn new(sandbox: Sandbox, guest: FilterGuest) -> Self {
        FilterInstance { sandbox, guest }
    }

    /// Open a transformer for batches of `input`; the instance becomes it.
    ///
    /// # Errors
    /// The plugin's error (an unknown column, say) or a sandbox failure.
    pub fn into_transformer(mut self, config: &str, input: &SchemaRef) -> Result<Transformer> {
        let schema = encode_schema(input);
        let guest = &self.guest;
        let handle = self
            .sandbox
            .call("transformer.open", |s| guest.call_open(s, config, &schema))?;
        let raw = self.sandbox.call("transformer.output-schema", |s| {
            guest.call_output_schema(s, handle).map(Ok)
        })?;
        let cap = self.sandbox.limits.caps.schema_bytes;
        self.sandbox.cap(
            "transformer.output-schema",
            within("the output schema", raw.len(), cap, setting::SCHEMA),
        )?;
        let output = decode_schema(&raw)
            .map_err(|e| self.sandbox.invalid("transformer.output-schema", e))?;
        let plan = self
            .sandbox
            .call("transformer.plan", |s| guest.call_plan(s, handle).map(Ok))?;
        let plan = match plan {
            Some(plan) => Some(
                checked_plan(plan, input, &output)
                    .map_err(|e| self.sandbox.invalid("transformer.plan", e))?,
            ),
            None => None,
        };
        Ok(Transformer {
            instance: self,
            handle: Some(handle),
            output,
            plan,
        })
    }
}

/// A plan from the guest, checked against the schemas it will meet.
fn checked_plan(plan: filter::Plan, input: &SchemaRef, output: &SchemaRef) -> Result<Plan, String> {
    let indexes = |reads: Vec<u32>| reads.into_iter().map(|i| i as usize).collect();
    let plan = Plan {
        keep_reads: plan.keep_reads.map(indexes),
        compute_reads: indexes(plan.compute_reads),
        columns: plan
            .columns
            .into_iter()
            .map(|c| match c {
                filter::OutputColumn::Input(i) => OutputColumn::Input(i as usize),
                filter::OutputColumn::Computed(k) => OutputColumn::Computed(k as usize),
            })
            .collect(),
    };
    plan.check(input.fields().len(), output.fields().len())?;
    for (column, field) in plan.columns.iter().zip(output.fields()) {
        if let OutputColumn::Input(i) = *column {
            let passed = input.field(i).data_type();
            if passed != field.data_type() {
                return Err(format!(
                    "output column `{}` is input column {i} passed through, but its type {} is not the input's {passed}",
                    field.name(),
                    field.data_type()
                ));
            }
        }
    }
    Ok(plan)
}

/// The rows a selection keeps, from the guest's bitmap.
fn keep_bits(bytes: Vec<u8>, rows: usize) -> Result<BooleanBuffer, String> {
    if bytes.len() < rows.div_ceil(8) {
        return Err(format!(
            "`keep` returned {} bytes, {rows} rows need {}",
            bytes.len(),
            rows.div_ceil(8)
        ));
    }
    Ok(BooleanBuffer::new(Buffer::from_vec(bytes), 0, rows))
}

/// A column-wise transformer's two calls, for [`columnar::run`].
struct Questions<'a> {
    instance: &'a mut FilterInstance,
    handle: ResourceAny,
}

impl ColumnWise for Questions<'_> {
    type Error = crate::Error;

    fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer> {
        const CALL: &str = "transformer.keep";
        let rows = columns.num_rows();
        let input = self.instance.sandbox.lend(columns)?;
        let (guest, handle) = (&self.instance.guest, self.handle);
        let bytes = self
            .instance
            .sandbox
            .call(CALL, |s| guest.call_keep(s, handle, input))?;
        keep_bits(bytes, rows).map_err(|e| self.instance.sandbox.invalid(CALL, e))
    }

    fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch> {
        const CALL: &str = "transformer.compute";
        let input = self.instance.sandbox.lend(rows)?;
        let (guest, handle) = (&self.instance.guest, self.handle);
        let computed = self
            .instance
            .sandbox
            .call(CALL, |s| guest.call_compute(s, handle, input))?;
        self.instance.sandbox.take(CALL, computed)
    }
}

/// An open transformer.
pub struct Transformer {
    instance: FilterInstance,
    handle: Option<ResourceAny>,
    output: SchemaRef,
    /// Set for a column-wise filter: batches go through `select`.
    plan: Option<Plan>,
}

impl Transformer {
    /// The schema of every batch it returns.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    fn collect(&mut self, call: &str, handles: Vec<Resource<Batch>>) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::with_capacity(handles.len());
        let mut handles = handles.into_iter();
        while let Some(h) = handles.next() {
            let batch = self.instance.sandbox.take(call, h)?;
            match crate::batch::conform(batch, &self.output) {
                Ok(batch) => out.push(batch),
                Err(e) => {
                    for rest in handles.by_ref() {
                        let _ = self.instance.sandbox.take(call, rest);
                    }
                    return Err(self.instance.sandbox.invalid(
                        call,
                        format!("a batch does not fit the declared output schema: {e}"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Transform one batch into zero or more.
    ///
    /// # Errors
    /// The plugin's error, a sandbox failure, or an invalid batch.
    pub fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        if self.plan.is_some() {
            return self.column_wise(batch);
        }
        let handle = self.handle.expect("open until dropped");
        let input = self.instance.sandbox.lend(batch)?;
        let guest = &self.instance.guest;
        let handles = self.instance.sandbox.call("transformer.process", |s| {
            guest.call_process(s, handle, input)
        })?;
        self.collect("transformer.process", handles)
    }

    /// A column-wise filter: ask it which rows to keep and what it computes
    /// (sending each question only the columns it reads), and assemble the
    /// output here.
    fn column_wise(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let plan = self.plan.as_ref().expect("called for column-wise filters");
        let handle = self.handle.expect("open until dropped");
        let mut guest = Questions {
            instance: &mut self.instance,
            handle,
        };
        let out = columnar::run(&batch, plan, &self.output, &mut guest).map_err(|f| match f {
            Failure::Filter(e) => e,
            Failure::Invalid { call, message } => self
                .instance
                .sandbox
                .invalid(&format!("transformer.{call}"), message),
        })?;
        Ok(if out.num_rows() == 0 {
            Vec::new()
        } else {
            vec![out]
        })
    }

    /// Emit what the filter held back.
    ///
    /// # Errors
    /// As [`Transformer::process`].
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        if self.plan.is_some() {
            return Ok(Vec::new());
        }
        let handle = self.handle.expect("open until dropped");
        let guest = &self.instance.guest;
        let handles = self
            .instance
            .sandbox
            .call("transformer.finish", |s| guest.call_finish(s, handle))?;
        self.collect("transformer.finish", handles)
    }
}

impl Drop for Transformer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.instance.sandbox.drop_resource(handle);
        }
    }
}
