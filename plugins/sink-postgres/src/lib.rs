//! `postgres` sink: binary COPY into PostgreSQL tables (see `sluice-sink-sql`).

use sluice_sdk::export_sink;
use sluice_sdk::sql::Dialect;
use sluice_sink_sql::{Flavor, SqlSink};

/// The PostgreSQL flavor.
pub struct PostgresFlavor;

impl Flavor for PostgresFlavor {
    const NAME: &'static str = "postgres";
    const DESCRIPTION: &'static str = "PostgreSQL tables by binary COPY: append, replace, merge";
    const DIALECT: Dialect = Dialect::Postgres;
}

/// The plugin.
pub type Postgres = SqlSink<PostgresFlavor>;

export_sink!(Postgres);
