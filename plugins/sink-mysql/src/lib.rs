//! `mysql` sink: MySQL and MariaDB tables (see `sluice-sink-sql`).

use sluice_sdk::export_sink;
use sluice_sdk::sql::Dialect;
use sluice_sink_sql::{Flavor, SqlSink};

/// The MySQL / MariaDB flavor.
pub struct MySqlFlavor;

impl Flavor for MySqlFlavor {
    const NAME: &'static str = "mysql";
    const DESCRIPTION: &'static str =
        "MySQL and MariaDB tables by multi-row INSERT: append, replace, merge";
    const DIALECT: Dialect = Dialect::MySql;
}

/// The plugin.
pub type MySql = SqlSink<MySqlFlavor>;

export_sink!(MySql);
