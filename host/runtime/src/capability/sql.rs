//! `sql`: database connections the job granted, by name.
//!
//! The plugin names a connection; the host looks the URL up in the grant,
//! connects, and converts rows to Arrow natively (`sluice-sql`). A plugin
//! asking for a connection it was not granted gets a config error naming
//! the grant to add, and never learns whether the connection exists.

use wasmtime::component::Resource;

use crate::batch::{Batch, encode_schema};
use crate::bindings::sql::{ColumnInfo, Host, HostConnection, HostRows, TableInfo, Value};
use crate::bindings::types::{Error as GuestError, ErrorKind as GuestErrorKind};
use crate::capability::{HostState, config_error};

pub use sluice_sql::{Connection, Rows};

impl From<sluice_sql::Error> for GuestError {
    fn from(e: sluice_sql::Error) -> Self {
        let kind = match e.kind {
            sluice_sql::ErrorKind::Config => GuestErrorKind::Config,
            sluice_sql::ErrorKind::Auth => GuestErrorKind::Auth,
            sluice_sql::ErrorKind::Transient => GuestErrorKind::Transient,
            sluice_sql::ErrorKind::Data => GuestErrorKind::Data,
            sluice_sql::ErrorKind::Internal => GuestErrorKind::Internal,
        };
        crate::bindings::guest_error(kind, e.message)
    }
}

fn params(values: Vec<Value>) -> Vec<sluice_sql::Value> {
    values
        .into_iter()
        .map(|v| match v {
            Value::Null => sluice_sql::Value::Null,
            Value::Boolean(b) => sluice_sql::Value::Bool(b),
            Value::Integer(i) => sluice_sql::Value::Int(i),
            Value::Float(f) => sluice_sql::Value::Float(f),
            Value::Text(s) => sluice_sql::Value::Text(s),
            Value::Bytes(b) => sluice_sql::Value::Bytes(b),
        })
        .collect()
}

fn table_info(t: sluice_sql::TableInfo) -> TableInfo {
    TableInfo {
        namespace: t.namespace,
        name: t.name,
        columns: t
            .columns
            .into_iter()
            .map(|c| ColumnInfo {
                name: c.name,
                database_type: c.database_type,
                arrow_type: sluice_types::type_name(&c.arrow_type),
                nullable: c.nullable,
            })
            .collect(),
        primary_key: t.primary_key,
        estimated_rows: t.estimated_rows,
    }
}

impl Host for HostState {}

impl HostConnection for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<Connection>, GuestError>> {
        self.guard("sql.connection.open", |state| {
            let Some(url) = state.grants.sql.get(&name) else {
                let granted: Vec<&str> = state.grants.sql.keys().map(String::as_str).collect();
                return Ok(Err(config_error(format!(
                    "connection `{name}` is not granted to plugin {}: add `grants: {{sql: [{name}]}}` to it in the job (granted: [{}])",
                    state.plugin,
                    granted.join(", ")
                ))));
            };
            match Connection::open(&name, &url.0) {
                Ok(c) => Ok(Ok(state.table.push(c)?)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn dialect(&mut self, this: Resource<Connection>) -> wasmtime::Result<String> {
        crate::call_log::host_function("sql.connection.dialect");
        Ok(match self.table.get(&this)?.dialect() {
            sluice_sql::Dialect::Postgres => "postgres".into(),
            sluice_sql::Dialect::MySql => "mysql".into(),
        })
    }

    fn tables(
        &mut self,
        this: Resource<Connection>,
        namespace: Option<String>,
    ) -> wasmtime::Result<Result<Vec<TableInfo>, GuestError>> {
        self.guard("sql.connection.tables", |state| {
            let tables = state.table.get_mut(&this)?.tables(namespace.as_deref());
            Ok(tables
                .map(|t| t.into_iter().map(table_info).collect())
                .map_err(GuestError::from))
        })
    }

    fn table(
        &mut self,
        this: Resource<Connection>,
        name: String,
    ) -> wasmtime::Result<Result<TableInfo, GuestError>> {
        self.guard("sql.connection.table", |state| {
            let table = state.table.get_mut(&this)?.table(&name);
            Ok(table.map(table_info).map_err(GuestError::from))
        })
    }

    fn query(
        &mut self,
        this: Resource<Connection>,
        statement: String,
        values: Vec<Value>,
        batch_rows: u32,
    ) -> wasmtime::Result<Result<Resource<Rows>, GuestError>> {
        self.guard("sql.connection.query", |state| {
            let rows =
                state
                    .table
                    .get_mut(&this)?
                    .query(&statement, &params(values), batch_rows as usize);
            match rows {
                Ok(rows) => Ok(Ok(state.table.push(rows)?)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn execute(
        &mut self,
        this: Resource<Connection>,
        statement: String,
        values: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, GuestError>> {
        self.guard("sql.connection.execute", |state| {
            let done = state
                .table
                .get_mut(&this)?
                .execute(&statement, &params(values));
            Ok(done.map_err(GuestError::from))
        })
    }

    fn load(
        &mut self,
        this: Resource<Connection>,
        table: String,
        rows: Resource<Batch>,
    ) -> wasmtime::Result<Result<u64, GuestError>> {
        self.guard("sql.connection.load", |state| {
            let batch = state.table.get(&rows)?.0.clone();
            let loaded = state.table.get_mut(&this)?.load(&table, &batch);
            Ok(loaded.map_err(GuestError::from))
        })
    }

    fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostRows for HostState {
    fn schema(&mut self, this: Resource<Rows>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("sql.rows.schema", |state| {
            Ok(encode_schema(state.table.get(&this)?.schema()))
        })
    }

    fn next(
        &mut self,
        this: Resource<Rows>,
    ) -> wasmtime::Result<Result<Option<Resource<Batch>>, GuestError>> {
        self.guard("sql.rows.next", |state| {
            let next = state.table.get_mut(&this)?.next_batch();
            match next {
                Ok(Some(batch)) => {
                    // Input volume for a database is the Arrow size of its rows.
                    state.bytes_read.fetch_add(
                        batch.get_array_memory_size() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    Ok(Ok(Some(state.table.push(Batch(batch))?)))
                }
                Ok(None) => Ok(Ok(None)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn drop(&mut self, this: Resource<Rows>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
