//! `select`: keep, drop, rename and cast columns, and filter rows.
//!
//! Steps run in a fixed order: `where` (on the input columns), then `keep`
//! or `drop`, then `cast`, then `rename`. Every column named anywhere must
//! exist: a typo is a config error when the task opens, not an empty result.

pub mod expr;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::BooleanBuffer;
use arrow_schema::{Field, Schema, SchemaRef};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::types::parse_type;
use sluice_sdk::{
    Error, Filter, Info, OutputColumn, Plan, Result, Transformer, export_filter, keep_where,
};

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

/// A cast: which column of the batch `compute` gets, and the new type.
#[derive(Debug, Clone)]
struct Cast {
    read: usize,
    to: arrow_schema::DataType,
}

/// The compiled config for one input schema.
///
/// Column-wise: `keep` reads the predicate's columns, `compute` the cast
/// ones (kept rows only); the host passes every other kept column through
/// untouched.
pub struct SelectTransformer {
    predicate: Option<expr::Expr>,
    casts: Vec<Cast>,
    computed: SchemaRef,
    plan: Plan,
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
        let keep_reads = match &predicate {
            Some(p) => {
                let mut reads = names_in(p)
                    .iter()
                    .map(|n| index("where", n))
                    .collect::<Result<Vec<_>>>()?;
                reads.sort_unstable();
                reads.dedup();
                Some(reads)
            }
            None => None,
        };
        let compute_reads: Vec<usize> = casts
            .keys()
            .filter(|i| picked.contains(i))
            .copied()
            .collect();
        let read_at = |i: usize| {
            compute_reads
                .iter()
                .position(|&r| r == i)
                .expect("read above")
        };
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        let mut cast_list = Vec::new();
        let mut computed_fields = Vec::new();
        for &i in &picked {
            let f = input.field(i);
            let name = config.rename.get(f.name()).unwrap_or(f.name());
            match casts.get(&i) {
                Some(dt) => {
                    let field = Field::new(name, dt.clone(), true);
                    columns.push(OutputColumn::Computed(cast_list.len()));
                    cast_list.push(Cast {
                        read: read_at(i),
                        to: dt.clone(),
                    });
                    computed_fields.push(field.clone());
                    fields.push(field);
                }
                None => {
                    columns.push(OutputColumn::Input(i));
                    fields.push(f.as_ref().clone().with_name(name));
                }
            }
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
            casts: cast_list,
            computed: Arc::new(Schema::new(computed_fields)),
            plan: Plan {
                keep_reads,
                compute_reads,
                columns,
            },
            output,
        })
    }
}

fn names_in(predicate: &expr::Expr) -> Vec<String> {
    let mut names = Vec::new();
    predicate.columns(&mut names);
    names
}

impl Transformer for SelectTransformer {
    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn plan(&self) -> Option<Plan> {
        Some(self.plan.clone())
    }

    fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer> {
        let predicate = self.predicate.as_ref().ok_or_else(|| {
            Error::internal("filter select: asked which rows to keep, with no `where`")
        })?;
        let mask = expr::evaluate(predicate, &columns)
            .map_err(|m| Error::data(format!("filter select: where: {m}")))?;
        Ok(keep_where(&mask))
    }

    // Only the kept rows arrive: a value the predicate dropped never fails.
    fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch> {
        let options = arrow_cast::CastOptions {
            safe: false,
            ..Default::default()
        };
        let arrays: Vec<ArrayRef> = self
            .casts
            .iter()
            .map(|c| {
                let column = rows.column(c.read);
                if let Some(cast) = decimal_to_f64(column, &c.to) {
                    return Ok(cast);
                }
                arrow_cast::cast_with_options(column, &c.to, &options).map_err(|e| {
                    Error::data(format!(
                        "filter select: cast.{}: {e}",
                        rows.schema().field(c.read).name()
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.computed.clone(),
            arrays,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
        )?)
    }
}

/// `cast: {amount: float64}` from a `Decimal128` column, as Arrow casts it,
/// without its 128-bit integer to float conversion: a software routine, and
/// in the sandbox most of a cast's time. A value that fits in 53 bits (any
/// amount below 90 trillion at scale 2) converts through `i64` to the same
/// float, and dividing by the exact power of ten rounds once, as Arrow's
/// cast does. `None` (Arrow's cast then runs) for other types, scales
/// outside 0..=22, or when some value is larger.
fn decimal_to_f64(column: &ArrayRef, to: &arrow_schema::DataType) -> Option<ArrayRef> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Float64Type};
    use arrow_array::{Array, PrimitiveArray};
    let arrow_schema::DataType::Decimal128(_, scale) = column.data_type() else {
        return None;
    };
    if to != &arrow_schema::DataType::Float64 || !(0..=22).contains(scale) {
        return None;
    }
    let pow = 10_f64.powi(i32::from(*scale));
    let decimals = column.as_primitive::<Decimal128Type>();
    let floats = exact_floats(decimals.values(), pow)?;
    Some(Arc::new(PrimitiveArray::<Float64Type>::new(
        floats.into(),
        decimals.nulls().cloned(),
    )))
}

/// `v / pow` for each value, or `None` if one is 2^53 or more away from 0.
/// Out of line and on 64-bit halves, so the loop stays small in registers.
#[inline(never)]
fn exact_floats(values: &[i128], pow: f64) -> Option<Vec<f64>> {
    let mut exact = true;
    let floats = values
        .iter()
        .map(|&v| {
            let (low, high) = (v as i64, (v >> 64) as i64);
            exact &= (high == low >> 63) & (low.unsigned_abs() < 1 << 53);
            low as f64 / pow
        })
        .collect();
    exact.then_some(floats)
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
    fn reads_only_the_predicate_and_cast_columns() {
        let b = input();
        let t = SelectTransformer::new(
            config(r#"{"cast":{"amount":"int64"},"where":"country = 'JP'"}"#),
            b.schema(),
        )
        .unwrap();
        let plan = t.plan().unwrap();
        assert_eq!(plan.keep_reads, Some(vec![2]));
        assert_eq!(plan.compute_reads, vec![1]);
        assert_eq!(
            plan.columns,
            vec![
                OutputColumn::Input(0),
                OutputColumn::Computed(0),
                OutputColumn::Input(2)
            ]
        );
    }

    #[test]
    fn casts_only_the_rows_kept() {
        // "-5" is fine, but the US row's amount would not parse as int64.
        let schema = input().schema();
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["-5", "n/a"])),
                Arc::new(StringArray::from(vec!["JP", "US"])),
            ],
        )
        .unwrap();
        let mut t = SelectTransformer::new(
            config(r#"{"cast":{"amount":"int64"},"where":"country = 'JP'"}"#),
            b.schema(),
        )
        .unwrap();
        let out = t.process(b).unwrap();
        assert_eq!(out[0].num_rows(), 1);
        let amounts = out[0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(amounts.value(0), -5);
    }

    #[test]
    fn decimal_to_f64_is_arrow_cast() {
        use arrow_array::Decimal128Array;
        let mut x = 3u64;
        let mut values: Vec<Option<i128>> = (0..2000)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = (x >> 11) as i128 % (1 << 53);
                (i % 7 != 0).then_some(if i % 2 == 0 { v } else { -v })
            })
            .collect();
        values.extend([Some(0), Some((1 << 53) - 1), Some(-(1 << 53) + 1), None]);
        for scale in [0i8, 2, 9, 22] {
            let column: ArrayRef = Arc::new(
                Decimal128Array::from(values.clone())
                    .with_precision_and_scale(38, scale)
                    .unwrap(),
            );
            let fast = decimal_to_f64(&column, &DataType::Float64).expect("fits");
            let arrow = arrow_cast::cast(&column, &DataType::Float64).unwrap();
            assert_eq!(fast.to_data(), arrow.to_data(), "scale {scale}");
        }
        // Past 2^53 the fast path steps aside for Arrow's own rounding.
        let big: ArrayRef = Arc::new(
            Decimal128Array::from(vec![1i128 << 60])
                .with_precision_and_scale(38, 2)
                .unwrap(),
        );
        assert!(decimal_to_f64(&big, &DataType::Float64).is_none());
        assert!(decimal_to_f64(&big, &DataType::Float32).is_none());
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
