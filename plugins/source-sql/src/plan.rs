//! The SQL a partition runs, and the state that carries a read from one
//! run (or one crash) to the next.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sluice_sdk::sql::{Dialect, Value};
use sluice_sdk::{Error, Result};

/// What one task reads: a key range (open-ended at both ends of the table,
/// so rows added after planning still land in a partition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Inclusive lower bound of the partition column.
    #[serde(default)]
    pub lo: Option<i64>,
    /// Exclusive upper bound.
    #[serde(default)]
    pub hi: Option<i64>,
    /// Ignore this partition's saved state: a full read starts over.
    #[serde(default)]
    pub fresh: bool,
}

/// One partition's saved state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Where the key ranges were cut, so the next run keeps each partition's
    /// rows in the same partition (and its cursor stays valid).
    #[serde(default)]
    pub boundaries: Vec<i64>,
    /// Incremental: the (cursor…, key…) values of the last row read.
    #[serde(default)]
    pub after: Option<Vec<Json>>,
    /// Full refresh: the partition was read to the end.
    #[serde(default)]
    pub done: bool,
}

impl State {
    /// Parse saved state, naming the partition when it is not ours.
    ///
    /// # Errors
    /// An internal error: state is only ever written by this plugin.
    pub fn parse(id: &str, text: &str) -> Result<State> {
        serde_json::from_str(text)
            .map_err(|e| Error::internal(format!("partition {id}: unreadable saved state: {e}")))
    }

    /// As saved.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("state serializes")
    }
}

/// Cut `[min, max]` into `n` ranges; the boundaries between them.
pub fn boundaries(min: i64, max: i64, n: u32) -> Vec<i64> {
    if n <= 1 || max <= min {
        return Vec::new();
    }
    let span = (max as i128 - min as i128 + 1) as f64;
    let mut cuts: Vec<i64> = (1..n)
        .map(|i| min + (span * f64::from(i) / f64::from(n)) as i64)
        .collect();
    cuts.dedup();
    cuts
}

/// The ranges between boundaries, open at both ends.
pub fn ranges(boundaries: &[i64]) -> Vec<Range> {
    let mut out = Vec::with_capacity(boundaries.len() + 1);
    let mut lo = None;
    for &b in boundaries {
        out.push(Range {
            lo,
            hi: Some(b),
            fresh: false,
        });
        lo = Some(b);
    }
    out.push(Range {
        lo,
        hi: None,
        fresh: false,
    });
    out
}

/// The statement for one partition.
#[derive(Debug, Clone)]
pub struct Select {
    /// A quoted table name or `(query) AS sluice_src`.
    pub relation: String,
    /// Columns to read (empty: all).
    pub columns: Vec<String>,
    /// The user's extra condition.
    pub filter: Option<String>,
    /// Incremental: the ordered tuple compared with the last row read.
    pub order: Vec<String>,
    /// The integer column ranges split, if partitioned.
    pub partition_column: Option<String>,
    /// Cursor columns: rows where one is NULL are never read incrementally
    /// (they would sort last and stop every later run).
    pub not_null: Vec<String>,
}

impl Select {
    /// SQL and parameters to read `range`, after `after` if given.
    pub fn sql(
        &self,
        dialect: Dialect,
        range: &Range,
        after: Option<&[Json]>,
    ) -> (String, Vec<Value>) {
        let q = |c: &str| dialect.quote(c);
        let columns = if self.columns.is_empty() {
            "*".to_string()
        } else {
            self.columns
                .iter()
                .map(|c| q(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        let param = |v: Value, params: &mut Vec<Value>| {
            params.push(v);
            format!("${}", params.len())
        };
        if let Some(f) = &self.filter {
            conditions.push(format!("({f})"));
        }
        for c in &self.not_null {
            conditions.push(format!("{} IS NOT NULL", q(c)));
        }
        if let Some(pc) = &self.partition_column {
            if let Some(lo) = range.lo {
                conditions.push(format!(
                    "{} >= {}",
                    q(pc),
                    param(Value::Int(lo), &mut params)
                ));
            }
            if let Some(hi) = range.hi {
                conditions.push(format!(
                    "{} < {}",
                    q(pc),
                    param(Value::Int(hi), &mut params)
                ));
            }
        }
        if let Some(after) = after {
            let names: Vec<String> = self.order.iter().map(|c| q(c)).collect();
            let values: Vec<String> = after
                .iter()
                .map(|v| param(json_to_value(v), &mut params))
                .collect();
            conditions.push(format!("({}) > ({})", names.join(", "), values.join(", ")));
        }
        let mut sql = format!("SELECT {columns} FROM {}", self.relation);
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if !self.order.is_empty() {
            let order: Vec<String> = self.order.iter().map(|c| q(c)).collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&order.join(", "));
        }
        (sql, params)
    }
}

/// A saved cursor value as a statement parameter.
pub fn json_to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select() -> Select {
        Select {
            relation: "\"public\".\"orders\"".into(),
            columns: vec!["id".into(), "updated_at".into()],
            filter: Some("status <> 'draft'".into()),
            order: vec!["updated_at".into(), "id".into()],
            partition_column: Some("id".into()),
            not_null: vec!["updated_at".into()],
        }
    }

    #[test]
    fn incremental_partition_sql() {
        let range = Range {
            lo: Some(100),
            hi: Some(200),
            fresh: false,
        };
        let after = [Json::String("2024-01-01T00:00:00Z".into()), Json::from(150)];
        let (sql, params) = select().sql(Dialect::Postgres, &range, Some(&after));
        assert_eq!(
            sql,
            "SELECT \"id\", \"updated_at\" FROM \"public\".\"orders\" WHERE (status <> 'draft') AND \"updated_at\" IS NOT NULL AND \"id\" >= $1 AND \"id\" < $2 AND (\"updated_at\", \"id\") > ($3, $4) ORDER BY \"updated_at\", \"id\""
        );
        assert_eq!(params.len(), 4);
        assert_eq!(params[3], Value::Int(150));
    }

    #[test]
    fn boundaries_split_evenly_and_ranges_are_open_ended() {
        assert_eq!(boundaries(1, 100, 4), vec![26, 51, 76]);
        assert_eq!(boundaries(5, 5, 4), Vec::<i64>::new());
        let r = ranges(&[10, 20]);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].lo, r[0].hi), (None, Some(10)));
        assert_eq!((r[2].lo, r[2].hi), (Some(20), None));
    }

    #[test]
    fn state_round_trips() {
        let s = State {
            boundaries: vec![10],
            after: Some(vec![Json::from(3)]),
            done: false,
        };
        assert_eq!(State::parse("0/2", &s.to_json()).unwrap(), s);
        assert!(State::parse("0/2", "garbage").is_err());
    }
}
