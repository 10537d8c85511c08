//! `mask`: masks e-mail addresses and drops test accounts, row by row, as
//! the Python `py-mask` does: the Rust line of the filter comparison in
//! `cargo xtask bench sdk`.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{Error, Filter, Info, Result, Transformer, export_filter};

/// Settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The column holding e-mail addresses.
    #[serde(default = "email")]
    pub email: String,
    /// Rows whose address ends with one of these are dropped.
    #[serde(default = "example")]
    pub drop_domains: Vec<String>,
}

fn email() -> String {
    "email".into()
}

fn example() -> Vec<String> {
    vec!["@example.com".into()]
}

/// The plugin.
pub struct Mask;

impl Filter for Mask {
    type Config = Config;
    type Transformer = MaskTransformer;

    fn info() -> Info {
        Info {
            name: "mask",
            version: "0.1.0",
            description: "Masks e-mail addresses and drops test accounts (Rust, benchmarks)",
            capabilities: &[],
        }
    }

    fn open(config: Config, input: SchemaRef) -> Result<MaskTransformer> {
        let column = input
            .index_of(&config.email)
            .map_err(|_| Error::config(format!("no column `{}` in the input", config.email)))?;
        Ok(MaskTransformer {
            input,
            column,
            drop: config.drop_domains,
        })
    }
}

/// One per task.
pub struct MaskTransformer {
    input: SchemaRef,
    column: usize,
    drop: Vec<String>,
}

fn mask(address: &str, out: &mut String) {
    out.clear();
    match address.split_once('@') {
        Some((user, domain)) => {
            out.extend(user.chars().take(1));
            out.push_str("***@");
            out.push_str(domain);
        }
        None => out.push_str("***"),
    }
}

impl Transformer for MaskTransformer {
    fn output_schema(&self) -> SchemaRef {
        self.input.clone()
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let emails = batch.column(self.column).as_string::<i32>();
        let keep: BooleanArray = emails
            .iter()
            .map(|e| Some(e.is_none_or(|e| !self.drop.iter().any(|d| e.ends_with(d.as_str())))))
            .collect();
        let kept = arrow_select::filter::filter_record_batch(&batch, &keep)?;
        let emails = kept.column(self.column).as_string::<i32>();
        let mut masked = StringBuilder::with_capacity(emails.len(), emails.value_data().len());
        let mut buf = String::new();
        for e in emails.iter() {
            match e {
                Some(e) => {
                    mask(e, &mut buf);
                    masked.append_value(&buf);
                }
                None => masked.append_null(),
            }
        }
        let mut columns = kept.columns().to_vec();
        columns[self.column] = Arc::new(masked.finish());
        Ok(vec![RecordBatch::try_new(self.input.clone(), columns)?])
    }
}

export_filter!(Mask);
