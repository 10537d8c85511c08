//! The statements the source runs: the rows (past a saved bound and up to
//! this run's), and the last row, which sets this run's bound. Bounds are
//! query parameters, never text spliced into SQL.

use sluice_sdk::bigquery::Param;
use sluice_sdk::{Error, Result};

use crate::Bound;

/// A name quoted for BigQuery's standard SQL.
pub fn quote(name: &str) -> Result<String> {
    if name.is_empty() || name.contains(['`', '\\']) || name.chars().any(char::is_control) {
        return Err(Error::config(format!(
            "`{name}` is not a usable BigQuery name"
        )));
    }
    Ok(format!("`{name}`"))
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Select {
    /// A quoted table, or a parenthesized query.
    pub relation: String,
    /// The query, as the config wrote it.
    pub query: Option<String>,
    /// Columns to read (empty: all).
    pub columns: Vec<String>,
    /// The config's `where`.
    pub filter: Option<String>,
    /// `(cursor…, key…)` of incremental reads.
    pub order: Vec<String>,
    /// The cursor columns (rows with a NULL cursor are never read).
    pub cursor: Vec<String>,
}

/// `(c1, c2…) op (@p1, @p2…)` compared lexicographically, which BigQuery
/// has no tuple syntax for: `c1 > @a0 OR (c1 = @a0 AND (c2 > @a1))`.
fn tuple_compare(columns: &[String], prefix: &str, strict: &str, last: &str) -> Result<String> {
    let mut out = String::new();
    for (i, c) in columns.iter().enumerate().rev() {
        let c = quote(c)?;
        let p = format!("@{prefix}{i}");
        out = if out.is_empty() {
            format!("{c} {last} {p}")
        } else {
            format!("{c} {strict} {p} OR ({c} = {p} AND ({out}))")
        };
    }
    Ok(format!("({out})"))
}

fn params(prefix: &str, bound: &[Bound]) -> Vec<Param> {
    bound
        .iter()
        .enumerate()
        .map(|(i, b)| Param {
            name: format!("{prefix}{i}"),
            ty: b.ty.clone(),
            value: Some(b.value.clone()),
        })
        .collect()
}

impl Select {
    /// `WHERE` conditions and their parameters: the filter, cursors not
    /// NULL, past `after` and up to `upper`.
    fn conditions(&self, after: &[Bound], upper: Option<&[Bound]>) -> Result<(String, Vec<Param>)> {
        let mut conditions = Vec::new();
        if let Some(f) = &self.filter {
            conditions.push(format!("({f})"));
        }
        for c in &self.cursor {
            conditions.push(format!("{} IS NOT NULL", quote(c)?));
        }
        let mut all = Vec::new();
        if !after.is_empty() {
            if after.len() != self.order.len() {
                return Err(Error::config(format!(
                    "the saved state has {} bound values for {} cursor and key columns: the incremental columns changed; reset the state",
                    after.len(),
                    self.order.len()
                )));
            }
            conditions.push(tuple_compare(&self.order, "after", ">", ">")?);
            all.extend(params("after", after));
        }
        if let Some(upper) = upper {
            conditions.push(tuple_compare(&self.order, "upper", "<", "<=")?);
            all.extend(params("upper", upper));
        }
        let text = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        Ok((text, all))
    }

    fn columns(&self) -> Result<String> {
        if self.columns.is_empty() {
            return Ok("*".into());
        }
        let quoted: Vec<String> = self
            .columns
            .iter()
            .map(|c| quote(c))
            .collect::<Result<_>>()?;
        Ok(quoted.join(", "))
    }

    /// The rows past `after` and up to `upper`. A query nothing narrows
    /// is sent as written (its `ORDER BY` kept, and a statement that is not
    /// a SELECT refused as that by the host's dry run).
    pub fn rows(&self, after: &[Bound], upper: Option<&[Bound]>) -> Result<(String, Vec<Param>)> {
        let (conditions, params) = self.conditions(after, upper)?;
        if let Some(query) = &self.query
            && conditions.is_empty()
            && self.columns.is_empty()
        {
            return Ok((query.clone(), params));
        }
        Ok((
            format!(
                "SELECT {} FROM {} AS sluice_src{conditions}",
                self.columns()?,
                self.relation
            ),
            params,
        ))
    }

    /// The largest `(cursor…, key…)` past `after`: this run's bound.
    pub fn last_row(&self, after: &[Bound]) -> Result<(String, Vec<Param>)> {
        let (conditions, params) = self.conditions(after, None)?;
        let order: Vec<String> = self.order.iter().map(|c| quote(c)).collect::<Result<_>>()?;
        let descending: Vec<String> = order.iter().map(|c| format!("{c} DESC")).collect();
        Ok((
            format!(
                "SELECT {} FROM {} AS sluice_src{conditions} ORDER BY {} LIMIT 1",
                order.join(", "),
                self.relation,
                descending.join(", ")
            ),
            params,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select() -> Select {
        Select {
            relation: "`p`.`d`.`t`".into(),
            query: None,
            columns: vec![],
            filter: Some("status != 'draft'".into()),
            order: vec!["at".into(), "id".into()],
            cursor: vec!["at".into()],
        }
    }

    fn bound(v: &str) -> Bound {
        Bound {
            ty: "INT64".into(),
            value: v.into(),
        }
    }

    #[test]
    fn rows_lie_between_the_saved_bound_and_this_runs() {
        let after = [bound("1"), bound("2")];
        let upper = [bound("5"), bound("6")];
        let (sql, params) = select().rows(&after, Some(&upper)).unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM `p`.`d`.`t` AS sluice_src WHERE (status != 'draft') AND `at` IS NOT NULL \
             AND (`at` > @after0 OR (`at` = @after0 AND (`id` > @after1))) \
             AND (`at` < @upper0 OR (`at` = @upper0 AND (`id` <= @upper1)))"
        );
        assert_eq!(params.len(), 4);
        assert_eq!(params[3].name, "upper1");
    }

    #[test]
    fn the_last_row_orders_by_cursor_and_key_descending() {
        let (sql, params) = select().last_row(&[]).unwrap();
        assert!(
            sql.ends_with("ORDER BY `at` DESC, `id` DESC LIMIT 1"),
            "{sql}"
        );
        assert!(sql.starts_with("SELECT `at`, `id` FROM"), "{sql}");
        assert!(params.is_empty());
        let e = select().rows(&[bound("1")], None).unwrap_err();
        assert!(e.message.contains("reset the state"), "{}", e.message);
        assert!(quote("a`b").is_err());
    }
}
