//! Filters: open against the sample schema, turn the sample batches into
//! batches of the declared output schema, and do it the same way twice.

use arrow::record_batch::RecordBatch;
use sluice_runtime::{Grants, Plugin};

use crate::{Outcome, Report, data};

const BATCHES: usize = 3;

fn run_once(
    plugin: &Plugin,
    config: &str,
    limits: sluice_runtime::Limits,
) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>), String> {
    let mut transformer = plugin
        .filter(std::sync::Arc::new(Grants::default()), limits)
        .and_then(|f| f.into_transformer(config, &data::sample_schema()))
        .map_err(|e| {
            format!(
                "{e}\n  (the input has id: Int64, name: Utf8, amount: Float64, day: Date32, flag: Boolean; \
                 give a --config that fits it)"
            )
        })?;
    let schema = transformer.output_schema().clone();
    let mut out = Vec::new();
    for n in 0..BATCHES {
        out.extend(
            transformer
                .process(data::sample_batch(n))
                .map_err(|e| e.to_string())?,
        );
    }
    out.extend(transformer.finish().map_err(|e| e.to_string())?);
    Ok((schema, out))
}

pub(crate) fn checks(
    plugin: &Plugin,
    config: &str,
    limits: sluice_runtime::Limits,
    report: &mut Report,
) {
    let (schema, first) = match run_once(plugin, config, limits) {
        Ok(r) => r,
        Err(e) => {
            report.push("transforms the sample batches", Outcome::Failed(e));
            return;
        }
    };
    let rows: usize = first.iter().map(|b| b.num_rows()).sum();
    report.push(
        "transforms the sample batches",
        Outcome::Passed(format!(
            "{} rows in, {rows} rows out",
            BATCHES * data::SAMPLE_ROWS
        )),
    );
    let off = first
        .iter()
        .find(|b| !sluice_runtime::same_fields(&schema, &b.schema()));
    report.push(
        "output batches have the declared output schema",
        match off {
            None => Outcome::Passed(format!("{} columns", schema.fields().len())),
            Some(b) => Outcome::Failed(format!(
                "output-schema() said {schema:?}, a batch has {:?}",
                b.schema()
            )),
        },
    );
    report.push(
        "the same input gives the same output",
        match run_once(plugin, config, limits) {
            Ok((_, again)) if data::concat(&schema, &again) == data::concat(&schema, &first) => {
                Outcome::Passed("deterministic".into())
            }
            Ok(_) => Outcome::Failed(
                "a second run over the same batches gave other rows: keep no hidden state between tasks"
                    .into(),
            ),
            Err(e) => Outcome::Failed(format!("the second run failed: {e}")),
        },
    );
}
