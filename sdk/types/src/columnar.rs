//! Column-wise filters: a plan declared once, then per batch the rows to
//! keep, the computed columns, and the assembly of the output.
//!
//! A filter that keeps, drops, renames or computes columns and keeps some
//! rows does not need to see every column, nor every row. With a [`Plan`]
//! it is asked which rows to keep, given only the columns that decision
//! reads (`keep`), and then for its computed columns, given only the
//! columns they are computed from and only for the kept rows (`compute`):
//! a cast never sees a value the predicate dropped, and rows that are
//! dropped never cross into the plugin twice. Everything else is native
//! work: the host filters and assembles with [`run`]. The SDK's native path
//! calls the same function, so a plugin's unit tests see exactly what the
//! host will produce.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow_buffer::BooleanBuffer;
use arrow_schema::SchemaRef;
use arrow_select::filter::{FilterBuilder, FilterPredicate};

/// How a column-wise filter uses each batch; fixed when it opens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Input columns `keep` reads, by index in the input schema; the batch
    /// it is given has exactly these, in this order. `None` when the filter
    /// keeps every row (`keep` is then never called).
    pub keep_reads: Option<Vec<usize>>,
    /// Input columns `compute` reads, by index in the input schema; it is
    /// given exactly these, for the kept rows only.
    pub compute_reads: Vec<usize>,
    /// Where each output column comes from, in output order.
    pub columns: Vec<OutputColumn>,
}

/// The origin of one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// An input column, by index in the input schema, passed through.
    Input(usize),
    /// A column of what `compute` returns, by index.
    Computed(usize),
}

/// The rows where `mask` is true; null counts as false (SQL semantics).
pub fn keep_where(mask: &BooleanArray) -> BooleanBuffer {
    match mask.nulls() {
        Some(nulls) => mask.values() & nulls.inner(),
        None => mask.values().clone(),
    }
}

impl Plan {
    /// Check the plan against the schemas it will be used with.
    ///
    /// # Errors
    /// A message naming the first index out of range.
    pub fn check(&self, input_columns: usize, output_columns: usize) -> Result<(), String> {
        let reads = self.keep_reads.iter().flatten().chain(&self.compute_reads);
        if let Some(i) = reads.into_iter().find(|&&i| i >= input_columns) {
            return Err(format!(
                "plan reads input column {i}, but the input has {input_columns}"
            ));
        }
        if self.columns.len() != output_columns {
            return Err(format!(
                "plan lists {} output columns, but the output schema has {output_columns}",
                self.columns.len()
            ));
        }
        for c in &self.columns {
            if let OutputColumn::Input(i) = c
                && *i >= input_columns
            {
                return Err(format!(
                    "plan passes input column {i} through, but the input has {input_columns}"
                ));
            }
        }
        Ok(())
    }

    /// The number of computed columns the plan refers to: `compute` is
    /// called only when there are any.
    pub fn computed_columns(&self) -> usize {
        self.columns
            .iter()
            .filter_map(|c| match c {
                OutputColumn::Computed(k) => Some(k + 1),
                OutputColumn::Input(_) => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// The two questions a column-wise filter answers for each batch.
pub trait ColumnWise {
    /// The filter's own error.
    type Error;
    /// Which rows to keep, one bit per row, given the `keep_reads` columns.
    ///
    /// # Errors
    /// The filter's.
    fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer, Self::Error>;
    /// The computed columns, given the `compute_reads` columns of the kept
    /// rows.
    ///
    /// # Errors
    /// The filter's.
    fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch, Self::Error>;
}

/// Why a column-wise filter produced no batch.
#[derive(Debug)]
pub enum Failure<E> {
    /// The filter's own error, from `keep` or `compute`.
    Filter(E),
    /// What the filter returned does not fit the plan or the schemas.
    Invalid {
        /// `keep` or `compute`.
        call: &'static str,
        /// What does not fit.
        message: String,
    },
}

/// Run a column-wise filter over one batch: ask `keep` which rows to keep
/// (given the `keep_reads` columns), filter the `compute_reads` columns to
/// those rows, ask `compute` for the computed columns, and assemble the
/// output in `plan.columns` order. Everything the filter returns is checked,
/// so a bad answer is an error, never a panic.
///
/// # Errors
/// The filter's error, or what does not fit: the length of the rows kept,
/// the number of computed rows or columns, or a column's type against
/// `output`.
pub fn run<E>(
    input: &RecordBatch,
    plan: &Plan,
    output: &SchemaRef,
    filter: &mut impl ColumnWise<Error = E>,
) -> Result<RecordBatch, Failure<E>> {
    let invalid = |call, message| Failure::Invalid { call, message };
    let rows = input.num_rows();
    let keep = match &plan.keep_reads {
        None => None,
        Some(reads) => {
            let columns = project(input, reads).map_err(|m| invalid("keep", m))?;
            let kept = filter.keep(columns).map_err(Failure::Filter)?;
            if kept.len() != rows {
                return Err(invalid(
                    "keep",
                    format!("{} rows kept or dropped, the batch has {rows}", kept.len()),
                ));
            }
            Some(kept)
        }
    };
    let predicate = match keep {
        Some(k) if k.count_set_bits() < rows => Some(
            FilterBuilder::new(&BooleanArray::new(k, None))
                .optimize()
                .build(),
        ),
        _ => None,
    };
    let kept = predicate.as_ref().map_or(rows, FilterPredicate::count);
    if kept == 0 {
        return Ok(RecordBatch::new_empty(Arc::clone(output)));
    }
    let rows_of = |column: &ArrayRef| match &predicate {
        Some(f) => f.filter(column).map_err(|e| e.to_string()),
        None => Ok(Arc::clone(column)),
    };
    let needed = plan.computed_columns();
    let computed = if needed == 0 {
        None
    } else {
        let from = project(input, &plan.compute_reads).map_err(|m| invalid("compute", m))?;
        let from = match &predicate {
            Some(_) => {
                let columns = from
                    .columns()
                    .iter()
                    .map(rows_of)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| invalid("compute", m))?;
                with_rows(from.schema(), columns, kept).map_err(|m| invalid("compute", m))?
            }
            None => from,
        };
        let computed = filter.compute(from).map_err(Failure::Filter)?;
        if computed.num_columns() < needed {
            return Err(invalid(
                "compute",
                format!(
                    "{} computed columns returned, the plan uses {needed}",
                    computed.num_columns()
                ),
            ));
        }
        if computed.num_rows() != kept {
            return Err(invalid(
                "compute",
                format!(
                    "{} computed rows returned for {kept} kept rows",
                    computed.num_rows()
                ),
            ));
        }
        Some(computed)
    };
    let columns = plan
        .columns
        .iter()
        .map(|c| match *c {
            OutputColumn::Input(i) => input
                .columns()
                .get(i)
                .ok_or_else(|| format!("no input column {i}"))
                .and_then(rows_of),
            OutputColumn::Computed(k) => Ok(computed
                .as_ref()
                .expect("checked above: computed columns are present")
                .column(k)
                .clone()),
        })
        .collect::<Result<Vec<ArrayRef>, String>>()
        .map_err(|m| invalid("plan", m))?;
    with_rows(Arc::clone(output), columns, kept).map_err(|m| {
        invalid(
            "plan",
            format!("the assembled batch does not fit the output schema: {m}"),
        )
    })
}

/// The columns `reads` of `input`, keeping its row count (a filter may read
/// no column at all).
fn project(input: &RecordBatch, reads: &[usize]) -> Result<RecordBatch, String> {
    let schema = input.schema().project(reads).map_err(|e| e.to_string())?;
    let columns = reads.iter().map(|&i| Arc::clone(input.column(i))).collect();
    with_rows(Arc::new(schema), columns, input.num_rows())
}

fn with_rows(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, String> {
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    fn input() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
            ],
        )
        .unwrap()
    }

    fn output() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("id", DataType::Float64, true),
        ]))
    }

    /// Keep by `name`, compute `id` as a float.
    fn plan() -> Plan {
        Plan {
            keep_reads: Some(vec![1]),
            compute_reads: vec![0],
            columns: vec![OutputColumn::Input(1), OutputColumn::Computed(0)],
        }
    }

    fn computed(values: Vec<f64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Float64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(values))]).unwrap()
    }

    /// A filter from two closures.
    struct Answers<K, C>(K, C);

    impl<K, C> ColumnWise for Answers<K, C>
    where
        K: FnMut(RecordBatch) -> Result<BooleanBuffer, String>,
        C: FnMut(RecordBatch) -> Result<RecordBatch, String>,
    {
        type Error = String;
        fn keep(&mut self, columns: RecordBatch) -> Result<BooleanBuffer, String> {
            (self.0)(columns)
        }
        fn compute(&mut self, rows: RecordBatch) -> Result<RecordBatch, String> {
            (self.1)(rows)
        }
    }

    fn run_with(
        plan: &Plan,
        output: &SchemaRef,
        keep: impl FnMut(RecordBatch) -> Result<BooleanBuffer, String>,
        compute: impl FnMut(RecordBatch) -> Result<RecordBatch, String>,
    ) -> Result<RecordBatch, Failure<String>> {
        run(&input(), plan, output, &mut Answers(keep, compute))
    }

    fn as_floats(batch: &RecordBatch) -> Vec<f64> {
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        ids.values().iter().map(|&v| v as f64).collect()
    }

    #[test]
    fn keep_sees_its_columns_and_compute_only_the_kept_rows() {
        let out = run_with(
            &plan(),
            &output(),
            |columns| {
                assert_eq!(columns.schema().field(0).name(), "name");
                let mask = BooleanArray::from(vec![Some(true), None, Some(true)]);
                Ok(keep_where(&mask))
            },
            |rows| {
                assert_eq!(rows.schema().field(0).name(), "id");
                Ok(computed(as_floats(&rows)))
            },
        )
        .unwrap();
        assert_eq!(out.num_rows(), 2);
        let names = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!((names.value(0), names.value(1)), ("a", "c"));
        let ids = out
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(ids.values().to_vec(), vec![1.0, 3.0]);
    }

    #[test]
    fn nothing_is_computed_when_nothing_is_kept_or_nothing_is_needed() {
        let out = run_with(
            &plan(),
            &output(),
            |_| Ok(BooleanBuffer::new_unset(3)),
            |_| panic!("compute called with no rows"),
        )
        .unwrap();
        assert_eq!(out.num_rows(), 0);
        let passthrough = Plan {
            keep_reads: None,
            compute_reads: vec![],
            columns: vec![OutputColumn::Input(1), OutputColumn::Input(0)],
        };
        let out = run_with(
            &passthrough,
            &input().schema().project(&[1, 0]).map(Arc::new).unwrap(),
            |_| panic!("keep called without keep_reads"),
            |_| panic!("compute called with no computed columns"),
        )
        .unwrap();
        assert_eq!(out.num_rows(), 3);
    }

    #[test]
    fn bad_answers_are_errors() {
        let invalid = |r: Result<RecordBatch, Failure<String>>| match r {
            Err(Failure::Invalid { call, message }) => format!("{call}: {message}"),
            other => panic!("expected an invalid answer, got {other:?}"),
        };
        let short = run_with(
            &plan(),
            &output(),
            |_| Ok(BooleanBuffer::new_set(2)),
            |rows| Ok(computed(as_floats(&rows))),
        );
        assert!(invalid(short).contains("keep: 2 rows"));

        let few = run_with(
            &plan(),
            &output(),
            |_| Ok(BooleanBuffer::new_set(3)),
            |_| Ok(computed(vec![1.0])),
        );
        assert!(invalid(few).contains("1 computed rows returned for 3 kept rows"));

        let wrong_type = Plan {
            keep_reads: None,
            compute_reads: vec![],
            columns: vec![OutputColumn::Input(0), OutputColumn::Input(1)],
        };
        let err = run_with(
            &wrong_type,
            &output(),
            |_| unreachable!(),
            |_| unreachable!(),
        );
        assert!(invalid(err).contains("does not fit the output schema"));

        let theirs = run_with(&plan(), &output(), |_| Err("no".into()), |_| unreachable!());
        assert!(matches!(theirs, Err(Failure::Filter(m)) if m == "no"));
    }

    #[test]
    fn plans_are_checked_against_schemas() {
        assert!(plan().check(2, 2).is_ok());
        assert!(
            plan()
                .check(1, 2)
                .unwrap_err()
                .contains("reads input column 1")
        );
        assert!(plan().check(2, 3).unwrap_err().contains("lists 2 output"));
    }
}
