//! `mysql` source: MySQL and MariaDB tables and queries (see
//! `sluice-source-sql`).

use sluice_sdk::export_source;
use sluice_sdk::sql::Dialect;
use sluice_source_sql::{Flavor, SqlSource};

/// The MySQL / MariaDB flavor.
pub struct MySqlFlavor;

impl Flavor for MySqlFlavor {
    const NAME: &'static str = "mysql";
    const DESCRIPTION: &'static str = "MySQL and MariaDB tables and queries: full refresh or incremental, in parallel by key ranges";
    const DIALECT: Dialect = Dialect::MySql;
}

/// The plugin.
pub type MySql = SqlSource<MySqlFlavor>;

export_source!(MySql);
