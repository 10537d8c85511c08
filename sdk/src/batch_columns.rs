//! [`Batch`] to and from columns of plain values (`batch.from-columns`,
//! `batch.to-columns`): the form the Python SDK hands rows over in. A Rust
//! plugin has Arrow and never needs it; it is here so the contract's every
//! function can be called from Rust, as the tests do.

use arrow_schema::SchemaRef;
use sluice_types::plain_columns::Column;

use crate::{Batch, Result};

#[cfg(target_arch = "wasm32")]
impl Batch {
    /// Let the host build a batch of `schema` from `columns`, one a field.
    ///
    /// # Errors
    /// A data error naming the column (and row) that did not fit.
    pub fn from_columns(schema: &SchemaRef, columns: Vec<Column>) -> Result<Batch> {
        let columns: Vec<wit::Column> = columns.into_iter().map(to_wit).collect();
        let handle =
            crate::batch::with_host_schema(schema, |s| wit::Batch::from_columns(s, &columns))??;
        Ok(Batch(handle))
    }

    /// The rows column by column, as the host writes them.
    ///
    /// # Errors
    /// A type with no plain form.
    pub fn to_columns(&self) -> Result<Vec<Column>> {
        Ok(self
            .0
            .to_columns(false)?
            .into_iter()
            .map(from_wit)
            .collect())
    }

    /// The rows column by column in the packed forms (one string a
    /// column), as the host writes them for the Python SDK.
    ///
    /// # Errors
    /// A type with no plain form.
    pub fn to_packed_columns(&self) -> Result<Vec<Column>> {
        Ok(self.0.to_columns(true)?.into_iter().map(from_wit).collect())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Batch {
    /// Build a batch of `schema` from `columns` with the host's own code.
    ///
    /// # Errors
    /// A data error naming the column (and row) that did not fit.
    pub fn from_columns(schema: &SchemaRef, columns: Vec<Column>) -> Result<Batch> {
        Ok(Batch(sluice_codec::columns_to_batch(
            schema.clone(),
            columns,
        )?))
    }

    /// The rows column by column, as the host writes them.
    ///
    /// # Errors
    /// A type with no plain form.
    pub fn to_columns(&self) -> Result<Vec<Column>> {
        Ok(sluice_codec::batch_to_columns(&self.0, false)?)
    }

    /// The rows column by column in the packed forms, as the host writes them.
    ///
    /// # Errors
    /// A type with no plain form.
    pub fn to_packed_columns(&self) -> Result<Vec<Column>> {
        Ok(sluice_codec::batch_to_columns(&self.0, true)?)
    }
}

#[cfg(target_arch = "wasm32")]
use {crate::__wit::sluice::plugin0_2_0::types as wit, sluice_types::plain_columns::ColumnValues};

#[cfg(target_arch = "wasm32")]
fn to_wit(column: Column) -> wit::Column {
    wit::Column {
        values: match column.values {
            ColumnValues::Int64(v) => wit::ColumnValues::Int64(v),
            ColumnValues::Float64(v) => wit::ColumnValues::Float64(v),
            ColumnValues::Boolean(v) => wit::ColumnValues::Boolean(v),
            ColumnValues::Text(v) => wit::ColumnValues::Text(v),
            ColumnValues::Binary(v) => wit::ColumnValues::Binary(v),
            ColumnValues::Json(v) => wit::ColumnValues::Json(v),
            ColumnValues::Int64Base64(v) => wit::ColumnValues::Int64Base64(v),
            ColumnValues::Float64Base64(v) => wit::ColumnValues::Float64Base64(v),
            ColumnValues::BooleanBase64(v) => wit::ColumnValues::BooleanBase64(v),
            ColumnValues::TextJoined { separator, text } => {
                wit::ColumnValues::TextJoined(wit::JoinedText { separator, text })
            }
        },
        nulls: column.nulls,
    }
}

#[cfg(target_arch = "wasm32")]
fn from_wit(column: wit::Column) -> Column {
    Column {
        values: match column.values {
            wit::ColumnValues::Int64(v) => ColumnValues::Int64(v),
            wit::ColumnValues::Float64(v) => ColumnValues::Float64(v),
            wit::ColumnValues::Boolean(v) => ColumnValues::Boolean(v),
            wit::ColumnValues::Text(v) => ColumnValues::Text(v),
            wit::ColumnValues::Binary(v) => ColumnValues::Binary(v),
            wit::ColumnValues::Json(v) => ColumnValues::Json(v),
            wit::ColumnValues::Int64Base64(v) => ColumnValues::Int64Base64(v),
            wit::ColumnValues::Float64Base64(v) => ColumnValues::Float64Base64(v),
            wit::ColumnValues::BooleanBase64(v) => ColumnValues::BooleanBase64(v),
            wit::ColumnValues::TextJoined(j) => ColumnValues::TextJoined {
                separator: j.separator,
                text: j.text,
            },
        },
        nulls: column.nulls,
    }
}
