//! `select`: keep, drop, rename and cast columns, and filter rows.
//!
//! Steps run in a fixed order: `where` (on the input columns), then `keep`
//! or `drop`, then `cast`, then `rename`. Every column named anywhere must
//! exist: a typo is a config error when the task opens, not an empty result.

pub mod expr;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::types::parse_type;
use sluice_sdk::{Error, Filter, Info, Result, Transformer, export_filter};

/// The select filter's config.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Keep only these columns, in this order.
    #[serde(default)]
    pub keep: Option<Vec<String>>,
    /// Drop these columns.
    #[serde(default)]
    pub drop: Vec<String>,
    /// New names: `{old: new}`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// New types: `{column: int64}`; values that do not convert fail the task.
    #[serde(default)]
    pub cast: BTreeMap<String, String>,
    /// Keep only rows where this predicate is true, e.g.
    /// `amount > 0 and country = 'JP'`.
    #[serde(default, rename = "where")]
    pub predicate: Option<String>,
}

/// The plugin.
pub struct Select;

impl Filter for Select {
    type Config = Config;
    type Transformer = SelectTransformer;

    fn info() -> Info {
        Info {
            name: "select",
            version: env!("CARGO_PKG_VERSION"),
            description: "Keep, drop, rename and cast columns; filter rows with a predicate",
            capabilities: &[],
        }
    }

    fn open(config: Config, input: SchemaRef) -> Result<SelectTransformer> {
        SelectTransformer::new(config, input)
    }
}

/// One column of the output: where it comes from and what it becomes.
#[derive(Debug, Clone)]
struct OutputColumn {
    input: usize,
    cast: Option<arrow_schema::DataType>,
}

/// The compiled config for one input schema.
pub struct SelectTransformer {
    predicate: Option<expr::Expr>,
    columns: Vec<OutputColumn>,
    output: SchemaRef,
}

fn unknown(what: &str, name: &str, input: &Schema) -> Error {
    let known: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
    Error::config(format!(
        "filter select: {what}: unknown column `{name}` (columns are: {})",
        known.join(", ")
    ))
}

impl SelectTransformer {
    /// Compile `config` against `input`.
    ///
    /// # Errors
    /// A config error naming the step and the unknown column or bad type.
    pub fn new(config: Config, input: SchemaRef) -> Result<Self> {
        let index = |what: &str, name: &str| {
            input
                .index_of(name)
                .map_err(|_| unknown(what, name, &input))
        };
        let predicate = match &config.predicate {
            Some(src) => {
                let e = expr::parse(src)
                    .map_err(|m| Error::config(format!("filter select: where: {m}")))?;
                let mut names = Vec::new();
                e.columns(&mut names);
                for n in &names {
                    index("where", n)?;
                }
                Some(e)
            }
            None => None,
        };
        let mut picked: Vec<usize> = match &config.keep {
            Some(keep) => keep
                .iter()
                .map(|n| index("keep", n))
                .collect::<Result<_>>()?,
            None => (0..input.fields().len()).collect(),
        };
        for n in &config.drop {
            let i = index("drop", n)?;
            picked.retain(|&p| p != i);
        }
        let mut casts = BTreeMap::new();
        for (n, ty) in &config.cast {
            let i = index("cast", n)?;
            let dt = parse_type(ty)
                .map_err(|m| Error::config(format!("filter select: cast.{n}: {m}")))?;
            if !arrow_cast::can_cast_types(input.field(i).data_type(), &dt) {
                return Err(Error::config(format!(
                    "filter select: cast.{n}: cannot cast {} to {dt}",
                    input.field(i).data_type()
                )));
            }
            casts.insert(i, dt);
        }
        for n in config.rename.keys() {
            index("rename", n)?;
        }
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for &i in &picked {
            let f = input.field(i);
            let name = config.rename.get(f.name()).unwrap_or(f.name());
            let cast = casts.get(&i).cloned();
            let field = match &cast {
                Some(dt) => Field::new(name, dt.clone(), true),
                None => f.as_ref().clone().with_name(name),
            };
            fields.push(field);
            columns.push(OutputColumn { input: i, cast });
        }
        let output = Arc::new(Schema::new(fields));
        let mut seen = std::collections::BTreeSet::new();
        for f in output.fields() {
            if !seen.insert(f.name()) {
                return Err(Error::config(format!(
                    "filter select: two output columns are named `{}`",
                    f.name()
                )));
            }
        }
        Ok(SelectTransformer {
            predicate,
            columns,
            output,
        })
    }
}

impl Transformer for SelectTransformer {
    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let batch = match &self.predicate {
            Some(p) => {
                let mask = expr::evaluate(p, &batch)
                    .map_err(|m| Error::data(format!("filter select: where: {m}")))?;
                arrow_select::filter::filter_record_batch(&batch, &mask)?
            }
            None => batch,
        };
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| {
                let a = batch.column(c.input);
                match &c.cast {
                    Some(dt) => arrow_cast::cast_with_options(
                        a,
                        dt,
                        &arrow_cast::CastOptions {
                            safe: false,
                            ..Default::default()
                        },
                    )
                    .map_err(|e| {
                        Error::data(format!(
                            "filter select: cast.{}: {e}",
                            batch.schema().field(c.input).name()
                        ))
                    }),
                    None => Ok(a.clone()),
                }
            })
            .collect::<Result<_>>()?;
        Ok(vec![RecordBatch::try_new(self.output.clone(), arrays)?])
    }
}

export_filter!(Select);

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::DataType;

    fn input() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("amount", DataType::Utf8, true),
            Field::new("country", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec!["10", "-5", "7"])),
                Arc::new(StringArray::from(vec!["JP", "JP", "US"])),
            ],
        )
        .unwrap()
    }

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keep_cast_rename_where() {
        let b = input();
        let mut t = SelectTransformer::new(
            config(r#"{"keep":["id","amount"],"cast":{"amount":"int64"},"rename":{"amount":"amt"},"where":"amount > 0 and country = 'JP'"}"#),
            b.schema(),
        )
        .unwrap();
        let out = t.process(b).unwrap();
        assert_eq!(out.len(), 1);
        let out = &out[0];
        assert_eq!(out.schema().field(1).name(), "amt");
        assert_eq!(out.schema().field(1).data_type(), &DataType::Int64);
        assert_eq!(out.num_rows(), 1);
        assert_eq!(
            out.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            1
        );
    }

    #[test]
    fn unknown_columns_fail_at_open() {
        let b = input();
        for (cfg, step) in [
            (r#"{"keep":["nope"]}"#, "keep"),
            (r#"{"drop":["nope"]}"#, "drop"),
            (r#"{"where":"nope > 1"}"#, "where"),
            (r#"{"cast":{"nope":"int64"}}"#, "cast"),
            (r#"{"rename":{"nope":"x"}}"#, "rename"),
        ] {
            let Err(err) = SelectTransformer::new(config(cfg), b.schema()) else {
                panic!("{cfg} should fail");
            };
            assert!(
                err.message.contains(step) && err.message.contains("`nope`"),
                "{err}"
            );
        }
    }

    #[test]
    fn through_the_harness() {
        use sluice_sdk::testing::Harness;
        let out = Harness::new()
            .filter::<Select>(
                serde_json::json!({"where": "country = 'JP'", "drop": ["amount"]}),
                vec![input()],
            )
            .unwrap();
        assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        let err = Harness::new()
            .filter::<Select>(serde_json::json!({"wher": "x"}), vec![input()])
            .unwrap_err();
        assert!(err.message.contains("wher"), "{err}");
    }
}
