//! `postgres` source: PostgreSQL tables and queries (see `sluice-source-sql`).

use sluice_sdk::export_source;
use sluice_sdk::sql::Dialect;
use sluice_source_sql::{Flavor, SqlSource};

/// The PostgreSQL flavor.
pub struct PostgresFlavor;

impl Flavor for PostgresFlavor {
    const NAME: &'static str = "postgres";
    const DESCRIPTION: &'static str =
        "PostgreSQL tables and queries: full refresh or incremental, in parallel by key ranges";
    const DIALECT: Dialect = Dialect::Postgres;
}

/// The plugin.
pub type Postgres = SqlSource<PostgresFlavor>;

export_source!(Postgres);
