//! Statement parameters, inlined as SQL literals.
//!
//! PostgreSQL's COPY cannot take bind parameters, and a literal lets the
//! server infer the type from its use (`updated_at > '2024-01-01'` works on a
//! `timestamptz` column, a text bind parameter does not). Every value is
//! quoted here, never pasted: a cursor value cannot inject SQL.

use crate::error::{Error, Result};

/// A value for a `$1`, `$2` … placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (also dates, timestamps, numerics: the server converts).
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

pub use sluice_types::Dialect;

impl Value {
    fn literal(&self, dialect: Dialect) -> Result<String> {
        Ok(match self {
            Value::Null => "NULL".into(),
            Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) if f.is_finite() => format!("{f:?}"),
            Value::Float(f) => match dialect {
                Dialect::Postgres => format!("'{f}'::float8"),
                Dialect::MySql => return Err(Error::data(format!("MySQL has no float {f}"))),
            },
            Value::Text(s) => {
                if s.contains('\0') {
                    return Err(Error::data("a text parameter contains a NUL character"));
                }
                let escaped = s.replace('\\', "\\\\").replace('\'', "''");
                match dialect {
                    Dialect::Postgres => format!("E'{escaped}'"),
                    Dialect::MySql => format!("'{escaped}'"),
                }
            }
            Value::Bytes(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                match dialect {
                    Dialect::Postgres => format!("decode('{hex}', 'hex')"),
                    Dialect::MySql => format!("X'{hex}'"),
                }
            }
        })
    }
}

/// Replace `$1` … `$n` outside quotes with the parameters' literals.
///
/// # Errors
/// A config error for a placeholder with no parameter, or a parameter
/// that no placeholder uses.
pub fn inline(statement: &str, params: &[Value], dialect: Dialect) -> Result<String> {
    if params.is_empty() {
        return Ok(statement.to_string());
    }
    let mut out = String::with_capacity(statement.len() + 16 * params.len());
    let mut used = vec![false; params.len()];
    let mut chars = statement.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                } else if c == '\\'
                    && dialect == Dialect::MySql
                    && let Some((_, next)) = chars.next()
                {
                    out.push(next);
                }
            }
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                    n = n * 10 + d.to_digit(10).expect("a digit") as usize;
                    chars.next();
                }
                let value = n
                    .checked_sub(1)
                    .and_then(|i| params.get(i))
                    .ok_or_else(|| {
                        Error::config(format!(
                            "the statement uses ${n}, but {} parameters were given",
                            params.len()
                        ))
                    })?;
                used[n - 1] = true;
                out.push_str(&value.literal(dialect)?);
            }
            None => out.push(c),
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(Error::config(format!(
            "parameter ${} is not used by the statement",
            i + 1
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_quotes_become_literals() {
        let sql = inline(
            "select '$1', \"$2\" from t where a > $1 and b = $2",
            &[Value::Text("it's".into()), Value::Int(7)],
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(
            sql,
            "select '$1', \"$2\" from t where a > E'it''s' and b = 7"
        );
    }

    #[test]
    fn backslashes_cannot_escape_the_quote() {
        let sql = inline(
            "x = $1",
            &[Value::Text("\\' or 1=1 --".into())],
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(sql, "x = E'\\\\'' or 1=1 --'");
        let sql = inline(
            "x = $1",
            &[Value::Text("\\' or 1=1 --".into())],
            Dialect::MySql,
        )
        .unwrap();
        assert_eq!(sql, "x = '\\\\'' or 1=1 --'");
    }

    #[test]
    fn missing_and_unused_parameters_are_errors() {
        assert!(inline("x = $2", &[Value::Int(1)], Dialect::Postgres).is_err());
        assert!(inline("x = 1", &[Value::Int(1)], Dialect::Postgres).is_err());
    }
}
