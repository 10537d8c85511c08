//! The SQL the host writes for a plugin, built from names it checked: a
//! plugin never sends a write statement, so none can reach outside its grant.

use sluice_codec::Error;

use crate::{BigQuery, TableRef};

/// A dataset name BigQuery accepts: letters, digits, underscores.
pub(crate) fn check_dataset(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 1024
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        return Ok(());
    }
    Err(Error::config(format!(
        "`{name}` is not a BigQuery dataset name (letters, digits and underscores)"
    )))
}

/// A table or column name that can be quoted: no backticks, backslashes
/// or control characters (BigQuery refuses them in names anyway).
fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 1024
        && !name
            .chars()
            .any(|c| c == '`' || c == '\\' || c.is_control());
    if ok {
        return Ok(());
    }
    Err(Error::config(format!(
        "`{name}` is not a usable BigQuery {what} name"
    )))
}

pub(crate) fn check_table(name: &str) -> Result<(), Error> {
    check_name("table", name)
}

pub(crate) fn check_column(name: &str) -> Result<(), Error> {
    check_name("column", name)
}

/// A column, quoted.
pub(crate) fn column(name: &str) -> String {
    format!("`{name}`")
}

impl BigQuery {
    /// A table, quoted with its project.
    pub(crate) fn quoted(&self, t: &TableRef) -> String {
        format!("`{}.{}.{}`", self.grant.project, t.dataset, t.table)
    }

    /// Upsert `source`'s rows into `target` on `key`: matched rows are
    /// updated, the others inserted. A key present more than once in
    /// `source` is taken once (BigQuery refuses a MERGE where two source
    /// rows match one target row).
    pub(crate) fn merge_sql(
        &self,
        target: &TableRef,
        source: &TableRef,
        key: &[String],
        columns: &[String],
    ) -> Result<String, Error> {
        for c in key.iter().chain(columns) {
            check_column(c)?;
        }
        let keys: Vec<String> = key.iter().map(|k| column(k)).collect();
        let on: Vec<String> = key
            .iter()
            .map(|k| format!("T.{0} = S.{0}", column(k)))
            .collect();
        let set: Vec<String> = columns
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{0} = S.{0}", column(c)))
            .collect();
        let cols: Vec<String> = columns.iter().map(|c| column(c)).collect();
        let values: Vec<String> = columns.iter().map(|c| format!("S.{}", column(c))).collect();
        let update = if set.is_empty() {
            String::new()
        } else {
            format!(" WHEN MATCHED THEN UPDATE SET {}", set.join(", "))
        };
        Ok(format!(
            "MERGE {target} T USING (SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {keys}) AS __sluice_row FROM {source}) WHERE __sluice_row = 1) S ON {on}{update} WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})",
            target = self.quoted(target),
            source = self.quoted(source),
            cols = cols.join(", "),
            keys = keys.join(", "),
            on = on.join(" AND "),
            values = values.join(", "),
        ))
    }

    /// Delete the rows of `t` whose `column` is in `[from, to)` (either end
    /// open when missing), or every row without a column.
    pub(crate) fn delete_sql(
        &self,
        t: &TableRef,
        range: Option<(&str, Option<&str>, Option<&str>)>,
    ) -> Result<String, Error> {
        let mut conditions = Vec::new();
        if let Some((c, from, to)) = range {
            check_column(c)?;
            if let Some(from) = from {
                conditions.push(format!("{} >= {}", column(c), literal(from)));
            }
            if let Some(to) = to {
                conditions.push(format!("{} < {}", column(c), literal(to)));
            }
        }
        if conditions.is_empty() {
            conditions.push("TRUE".into());
        }
        Ok(format!(
            "DELETE FROM {} WHERE {}",
            self.quoted(t),
            conditions.join(" AND ")
        ))
    }
}

/// A string literal, escaped (BigQuery compares it with a DATE or
/// TIMESTAMP column by coercing it).
fn literal(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BigQueryGrant;

    fn bq() -> BigQuery {
        BigQuery::new(BigQueryGrant {
            project: "p".into(),
            datasets: vec!["d".into()],
            location: None,
            settings: sluice_gcs::GcsSettings {
                endpoint: Some("http://127.0.0.1:1".into()),
                credentials: sluice_gcs::GcsCredentials::Anonymous,
            },
        })
        .unwrap()
    }

    fn t(name: &str) -> TableRef {
        TableRef {
            dataset: "d".into(),
            table: name.into(),
        }
    }

    #[test]
    fn merge_updates_and_inserts_on_the_key() {
        let sql = bq()
            .merge_sql(
                &t("orders"),
                &t("orders__sluice_staging"),
                &["id".into()],
                &["id".into(), "amount".into()],
            )
            .unwrap();
        assert!(sql.starts_with("MERGE `p.d.orders` T USING (SELECT `id`, `amount` FROM (SELECT `id`, `amount`, ROW_NUMBER() OVER (PARTITION BY `id`)"), "{sql}");
        assert!(sql.contains("ON T.`id` = S.`id` WHEN MATCHED THEN UPDATE SET `amount` = S.`amount` WHEN NOT MATCHED THEN INSERT (`id`, `amount`) VALUES (S.`id`, S.`amount`)"), "{sql}");
        assert!(
            bq().merge_sql(&t("o"), &t("s"), &["i`d".into()], &[])
                .is_err()
        );
    }

    #[test]
    fn deletes_a_range_with_escaped_bounds() {
        let sql = bq()
            .delete_sql(&t("e"), Some(("day", Some("2026-01-01"), Some("x'y"))))
            .unwrap();
        assert_eq!(
            sql,
            "DELETE FROM `p.d.e` WHERE `day` >= '2026-01-01' AND `day` < 'x\\'y'"
        );
        assert_eq!(
            bq().delete_sql(&t("e"), None).unwrap(),
            "DELETE FROM `p.d.e` WHERE TRUE"
        );
    }
}
