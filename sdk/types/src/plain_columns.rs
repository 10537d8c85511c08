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
    /// Integers as their little-endian bytes, base64-encoded: one string
    /// for guests that lower a list value by value.
    Int64Base64(String),
    /// Floating-point numbers, packed as `Int64Base64` packs integers.
    Float64Base64(String),
    /// Booleans, a byte each (0 or 1), base64-encoded.
    BooleanBase64(String),
    /// Strings in one string, each followed by `separator`, which none of
    /// them contains.
    TextJoined {
        /// What ends each value.
        separator: char,
        /// The values, each followed by `separator`.
        text: String,
    },
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
            ColumnValues::Int64Base64(_) => "int64-base64",
            ColumnValues::Float64Base64(_) => "float64-base64",
            ColumnValues::BooleanBase64(_) => "boolean-base64",
            ColumnValues::TextJoined { .. } => "text-joined",
        }
    }

    /// Whether this is one of the packed forms (one string for the column).
    pub fn is_packed(&self) -> bool {
        matches!(
            self,
            ColumnValues::Int64Base64(_)
                | ColumnValues::Float64Base64(_)
                | ColumnValues::BooleanBase64(_)
                | ColumnValues::TextJoined { .. }
        )
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
            ColumnValues::Int64Base64(s)
            | ColumnValues::Float64Base64(s)
            | ColumnValues::BooleanBase64(s)
            | ColumnValues::TextJoined { text: s, .. } => s.len(),
        };
        values + self.nulls.len() * 4
    }
}
