//! The contract's `column` records to and from the codec's plain
//! [`sluice_types::plain_columns`] ones: moved, never copied.

use sluice_types::plain_columns::{Column, ColumnValues};

use crate::bindings::types::{Column as GuestColumn, ColumnValues as GuestValues, JoinedText};

/// A column as a plugin sent it.
pub(crate) fn from_guest(column: GuestColumn) -> Column {
    Column {
        values: match column.values {
            GuestValues::Int64(v) => ColumnValues::Int64(v),
            GuestValues::Float64(v) => ColumnValues::Float64(v),
            GuestValues::Boolean(v) => ColumnValues::Boolean(v),
            GuestValues::Text(v) => ColumnValues::Text(v),
            GuestValues::Binary(v) => ColumnValues::Binary(v),
            GuestValues::Json(v) => ColumnValues::Json(v),
            GuestValues::Int64Base64(v) => ColumnValues::Int64Base64(v),
            GuestValues::Float64Base64(v) => ColumnValues::Float64Base64(v),
            GuestValues::BooleanBase64(v) => ColumnValues::BooleanBase64(v),
            GuestValues::TextJoined(j) => ColumnValues::TextJoined {
                separator: j.separator,
                text: j.text,
            },
        },
        nulls: column.nulls,
    }
}

/// A column for a plugin to read.
pub(crate) fn to_guest(column: Column) -> GuestColumn {
    GuestColumn {
        values: match column.values {
            ColumnValues::Int64(v) => GuestValues::Int64(v),
            ColumnValues::Float64(v) => GuestValues::Float64(v),
            ColumnValues::Boolean(v) => GuestValues::Boolean(v),
            ColumnValues::Text(v) => GuestValues::Text(v),
            ColumnValues::Binary(v) => GuestValues::Binary(v),
            ColumnValues::Json(v) => GuestValues::Json(v),
            ColumnValues::Int64Base64(v) => GuestValues::Int64Base64(v),
            ColumnValues::Float64Base64(v) => GuestValues::Float64Base64(v),
            ColumnValues::BooleanBase64(v) => GuestValues::BooleanBase64(v),
            ColumnValues::TextJoined { separator, text } => {
                GuestValues::TextJoined(JoinedText { separator, text })
            }
        },
        nulls: column.nulls,
    }
}
