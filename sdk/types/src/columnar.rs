//! Column-wise filters: a plan declared once, a row selection per batch, and
//! the assembly of the output from both.
//!
//! A filter that keeps, drops or renames columns and keeps some rows does
//! not need to see every column. With a [`Plan`] it reads only the columns
//! its predicate and casts use; the host keeps the others and assembles the
//! output with [`assemble`]. The SDK's native path calls the same function,
//! so a plugin's unit tests see exactly what the host will produce.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_buffer::BooleanBuffer;
use arrow_schema::SchemaRef;
use arrow_select::filter::FilterBuilder;

/// How a column-wise filter uses each batch; fixed when it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Input columns the filter reads, by index in the input schema. The
    /// batch it is given has exactly these, in this order.
    pub reads: Vec<usize>,
    /// Where each output column comes from, in output order.
    pub columns: Vec<OutputColumn>,
}

/// The origin of one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// An input column, by index in the input schema, passed through.
    Input(usize),
    /// A column of [`Selection::computed`], by index.
    Computed(usize),
}

/// What a column-wise filter decided for one batch.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The rows kept, one bit per input row; `None` keeps every row.
    pub keep: Option<BooleanBuffer>,
    /// Computed columns with one value per *kept* row, so that a cast never
    /// sees a value the predicate dropped.
    pub computed: Option<RecordBatch>,
}

impl Selection {
    /// The rows where `mask` is true; null counts as false (SQL semantics).
    pub fn keep_where(mask: &BooleanArray) -> BooleanBuffer {
        match mask.nulls() {
            Some(nulls) => mask.values() & nulls.inner(),
            None => mask.values().clone(),
        }
    }
}

impl Plan {
    /// Check the plan against the schemas it will be used with.
    ///
    /// # Errors
    /// A message naming the first index out of range.
    pub fn check(&self, input_columns: usize, output_columns: usize) -> Result<(), String> {
        if let Some(i) = self.reads.iter().find(|&&i| i >= input_columns) {
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

    /// The number of computed columns the plan refers to.
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

    /// The columns the filter reads, out of a whole input batch.
    ///
    /// # Errors
    /// When the plan does not fit the batch.
    pub fn project(&self, input: &RecordBatch) -> Result<RecordBatch, String> {
        input.project(&self.reads).map_err(|e| e.to_string())
    }
}

/// Build the output batch: the input's pass-through columns and the
/// computed ones, keeping the selected rows. Everything the filter returned
/// is checked, so a bad selection is an error, never a panic.
///
/// # Errors
/// A message saying what does not fit: the selection's length, the number
/// of computed rows or columns, or a column's type against `output`.
pub fn assemble(
    input: &RecordBatch,
    plan: &Plan,
    selection: Selection,
    output: &SchemaRef,
) -> Result<RecordBatch, String> {
    let rows = input.num_rows();
    let keep = match selection.keep {
        Some(keep) if keep.len() != rows => {
            return Err(format!(
                "selection has {} rows, the batch {rows}",
                keep.len()
            ));
        }
        Some(keep) if keep.count_set_bits() == rows => None,
        other => other,
    };
    let kept = keep.as_ref().map_or(rows, BooleanBuffer::count_set_bits);
    let needed = plan.computed_columns();
    let computed = match selection.computed {
        Some(c) if c.num_columns() < needed => {
            return Err(format!(
                "{} computed columns returned, the plan uses {needed}",
                c.num_columns()
            ));
        }
        Some(c) if c.num_rows() != kept => {
            return Err(format!(
                "computed columns have {} rows, the selection keeps {kept}",
                c.num_rows()
            ));
        }
        None if needed > 0 => {
            return Err(format!(
                "no computed columns returned, the plan uses {needed}"
            ));
        }
        other => other,
    };
    let filter = keep.map(|k| {
        FilterBuilder::new(&BooleanArray::new(k, None))
            .optimize()
            .build()
    });
    let columns = plan
        .columns
        .iter()
        .map(|c| match *c {
            OutputColumn::Input(i) => {
                let column = input
                    .columns()
                    .get(i)
                    .ok_or_else(|| format!("no input column {i}"))?;
                match &filter {
                    Some(f) => f.filter(column).map_err(|e| e.to_string()),
                    None => Ok(column.clone()),
                }
            }
            OutputColumn::Computed(k) => Ok(computed
                .as_ref()
                .expect("checked above: computed columns are present")
                .column(k)
                .clone()),
        })
        .collect::<Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(output),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(kept)),
    )
    .map_err(|e| format!("the assembled batch does not fit the output schema: {e}"))
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

    fn plan() -> Plan {
        Plan {
            reads: vec![0],
            columns: vec![OutputColumn::Input(1), OutputColumn::Computed(0)],
        }
    }

    fn computed(values: Vec<f64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Float64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(values))]).unwrap()
    }

    #[test]
    fn keeps_selected_rows_of_both_kinds_of_column() {
        let mask = BooleanArray::from(vec![Some(true), None, Some(true)]);
        let selection = Selection {
            keep: Some(Selection::keep_where(&mask)),
            computed: Some(computed(vec![1.0, 3.0])),
        };
        let out = assemble(&input(), &plan(), selection, &output()).unwrap();
        assert_eq!(out.num_rows(), 2);
        let names = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!((names.value(0), names.value(1)), ("a", "c"));
    }

    #[test]
    fn bad_selections_are_errors() {
        let short = Selection {
            keep: Some(BooleanBuffer::new_set(2)),
            computed: Some(computed(vec![1.0, 2.0])),
        };
        let err = assemble(&input(), &plan(), short, &output()).unwrap_err();
        assert!(err.contains("selection has 2 rows"), "{err}");

        let missing = Selection {
            keep: None,
            computed: None,
        };
        let err = assemble(&input(), &plan(), missing, &output()).unwrap_err();
        assert!(err.contains("no computed columns"), "{err}");

        let wrong_rows = Selection {
            keep: None,
            computed: Some(computed(vec![1.0])),
        };
        let err = assemble(&input(), &plan(), wrong_rows, &output()).unwrap_err();
        assert!(err.contains("selection keeps 3"), "{err}");

        let wrong_type = Plan {
            reads: vec![],
            columns: vec![OutputColumn::Input(0), OutputColumn::Input(1)],
        };
        let err = assemble(&input(), &wrong_type, Selection::default(), &output()).unwrap_err();
        assert!(err.contains("does not fit the output schema"), "{err}");
    }

    #[test]
    fn plans_are_checked_against_schemas() {
        assert!(plan().check(2, 2).is_ok());
        assert!(
            plan()
                .check(0, 2)
                .unwrap_err()
                .contains("reads input column 0")
        );
        assert!(plan().check(2, 3).unwrap_err().contains("lists 2 output"));
    }
}
