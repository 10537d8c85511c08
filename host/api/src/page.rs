//! Cursor pagination, the same on every list: `?limit=&cursor=` in,
//! `{items, next_cursor}` out. A cursor is opaque to callers; pass back the
//! one a page gave to get the next.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// The most items a page holds.
pub const MAX_LIMIT: i64 = 500;

/// Which page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items (1 to 500; default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Where to continue: a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size, checked.
    ///
    /// # Errors
    /// A limit outside 1..=500.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid(format!(
                "limit: {n} is outside 1 to {MAX_LIMIT}"
            ))),
        }
    }

    /// The cursor as an id (lists ordered by id).
    ///
    /// # Errors
    /// A cursor this API did not give.
    pub fn id_cursor(&self) -> Result<Option<i64>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    ApiError::invalid(format!("cursor: {c:?} is not a cursor this API gave"))
                })
            })
            .transpose()
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// A page from up to `limit + 1` fetched items: the extra one says
    /// there is a next page, and `cursor` names where it starts.
    pub fn from_fetched(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() as i64 > limit;
        items.truncate(limit.max(0) as usize);
        let next_cursor = if more { items.last().map(cursor) } else { None };
        Page { items, next_cursor }
    }
}
