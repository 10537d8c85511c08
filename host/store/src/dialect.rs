//! Where SQLite and PostgreSQL differ, and nowhere else.

/// The database behind a [`crate::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default: one process, one writer.
    Sqlite,
    /// The fleet's shared database.
    Postgres,
}

impl Dialect {
    /// The dialect a URL names.
    pub fn of_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// Replace the tokens in `text`:
    /// - `{now}`: the database's clock, milliseconds since the epoch;
    /// - `{clock}`: the clock at this moment (PostgreSQL's `{now}` is the
    ///   transaction's start): for times recorded, like when a task became ready;
    /// - `{now_text}`: the same as RFC 3339 text (run history);
    /// - `{skip_locked}` / `{for_update}`: row locks (nothing on SQLite);
    /// - `{ids:$N}`: a subquery over the JSON array of ids bound as `$N`;
    /// - `{id_rows:$N}`: the same as a table with one column, `id`, to join;
    /// - `{lock_t}`: lock the rows of `t` (nothing on SQLite).
    pub fn render(self, text: &str) -> String {
        let clock = match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        };
        let (now, now_text, skip_locked, for_update, lock_t) = match self {
            Dialect::Sqlite => (
                "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                "",
                "",
                "",
            ),
            Dialect::Postgres => (
                // now() (the transaction's start) is stable, so `ready_at <=
                // {now}` can drive an index scan; clock_timestamp() cannot.
                "(extract(epoch from now()) * 1000)::bigint",
                "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                " FOR UPDATE SKIP LOCKED",
                " FOR UPDATE",
                " FOR UPDATE OF t",
            ),
        };
        let mut out = text
            .replace("{now_text}", now_text)
            .replace("{now}", now)
            .replace("{clock}", clock)
            .replace("{skip_locked}", skip_locked)
            .replace("{for_update}", for_update)
            .replace("{lock_t}", lock_t);
        while let Some(start) = out.find("{id_rows:") {
            let Some(len) = out[start..].find('}') else {
                break;
            };
            let param = out[start + 9..start + len].to_string();
            let table = match self {
                Dialect::Sqlite => format!("(SELECT value AS id FROM json_each({param}))"),
                Dialect::Postgres => format!(
                    "(SELECT value::bigint AS id FROM jsonb_array_elements_text({param}::jsonb))"
                ),
            };
            out.replace_range(start..start + len + 1, &table);
        }
        while let Some(start) = out.find("{ids:") {
            let Some(len) = out[start..].find('}') else {
                break;
            };
            let param = out[start + 5..start + len].to_string();
            let list = match self {
                Dialect::Sqlite => format!("(SELECT value FROM json_each({param}))"),
                Dialect::Postgres => {
                    format!("(SELECT value::bigint FROM jsonb_array_elements_text({param}::jsonb))")
                }
            };
            out.replace_range(start..start + len + 1, &list);
        }
        out
    }
}

/// A JSON array of ids, for `{ids:$N}`.
pub(crate) fn id_list(ids: &[i64]) -> String {
    let mut s = String::with_capacity(ids.len() * 8 + 2);
    s.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tokens() {
        let q = "SELECT id FROM t WHERE id IN {ids:$1} AND at < {now}{skip_locked}";
        let pg = Dialect::Postgres.render(q);
        assert!(pg.contains("jsonb_array_elements_text($1::jsonb)"), "{pg}");
        assert!(pg.ends_with("FOR UPDATE SKIP LOCKED"));
        let lite = Dialect::Sqlite.render(q);
        assert!(lite.contains("json_each($1)"), "{lite}");
        assert!(!lite.contains('{'));
        assert_eq!(id_list(&[1, 22, 3]), "[1,22,3]");
        assert_eq!(id_list(&[]), "[]");
    }
}
