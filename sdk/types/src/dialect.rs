//! SQL dialects: one definition of identifier quoting for the host, which
//! runs statements, and for plugins, which write them.

/// Which database's SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
}

impl Dialect {
    /// What users call the database.
    pub fn product(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL/MariaDB",
        }
    }

    /// `name` quoted as one identifier (`"order"`, `` `order` ``), with the
    /// quote character doubled inside it.
    pub fn quote(self, name: &str) -> String {
        let q = match self {
            Dialect::Postgres => '"',
            Dialect::MySql => '`',
        };
        format!("{q}{}{q}", name.replace(q, &format!("{q}{q}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_cannot_be_escaped() {
        assert_eq!(Dialect::Postgres.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
    }
}
