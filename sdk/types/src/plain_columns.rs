//! Rows column by column as plain values: how a plugin without Arrow hands
//! a batch over or reads one (`batch.from-columns`, `batch.to-columns`)
//! when its bindings lower lists of numbers and strings natively, as
//! componentize-py does, without writing and parsing JSON text.
//!
//! These are the contract's records as plain data, so the host's codec, the
//! runtime and the SDK's native test harness share one definition.

/// One column's values, in one of a few forms every language has. The host
/// casts them to the column's type: dates, timestamps and decimals cross as
/// `Text`, narrower integers as `Int64`.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Integers.
    Int64(Vec<i64>),
    /// Floating-point numbers.
    Float64(Vec<f64>),
    /// Booleans.
    Boolean(Vec<bool>),
    /// Strings.
    Text(Vec<String>),
    /// Byte strings.
    Binary(Vec<Vec<u8>>),
    /// One JSON value a row (lists, structs, maps, or any value written as
    /// JSON Lines would hold it).
    Json(Vec<String>),
}

/// One column of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The values, a placeholder at each null row.
    pub values: ColumnValues,
    /// The rows whose value is null, ascending.
    pub nulls: Vec<u32>,
}

impl ColumnValues {
    /// The form's name, as the contract spells it.
    pub fn form(&self) -> &'static str {
        match self {
            ColumnValues::Int64(_) => "int64",
            ColumnValues::Float64(_) => "float64",
            ColumnValues::Boolean(_) => "boolean",
            ColumnValues::Text(_) => "text",
            ColumnValues::Binary(_) => "binary",
            ColumnValues::Json(_) => "json",
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Int64(v) => v.len(),
            ColumnValues::Float64(v) => v.len(),
            ColumnValues::Boolean(v) => v.len(),
            ColumnValues::Text(v) | ColumnValues::Json(v) => v.len(),
            ColumnValues::Binary(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Column {
    /// Bytes the column takes in memory: what the host holds against the
    /// batch cap (a string or byte string counts its heap header too).
    pub fn byte_len(&self) -> usize {
        let values = match &self.values {
            ColumnValues::Int64(v) => v.len() * 8,
            ColumnValues::Float64(v) => v.len() * 8,
            ColumnValues::Boolean(v) => v.len(),
            ColumnValues::Text(v) | ColumnValues::Json(v) => v.iter().map(|s| s.len() + 24).sum(),
            ColumnValues::Binary(v) => v.iter().map(|b| b.len() + 24).sum(),
        };
        values + self.nulls.len() * 4
    }
}
