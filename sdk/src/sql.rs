//! Databases the job granted to this plugin, by name.
//!
//! Queries run in the host, which converts rows to Arrow natively and hands
//! back [`Batch`] handles: a database source routes them to the pipeline
//! without copying a row into wasm memory. The plugin never sees a URL or a
//! password, only the connection's name.
//!
//! Statements take parameters as `$1`, `$2` … (for every database); the
//! host writes each [`Value`] into the statement as a quoted literal.
//!
//! The native test harness has no databases: plugins that use `sql` are
//! tested end to end through the host against a real server.

use arrow_schema::{DataType, SchemaRef};

use crate::{Batch, Error, Result};

#[cfg(target_arch = "wasm32")]
use crate::__wit::sluice::plugin0_2_0::sql as wit;

/// A value for a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text: also how dates, timestamps and decimals travel (the database
    /// converts them where they are compared).
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// A column as the database describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// The database's type name, e.g. `numeric(12,2)`.
    pub database_type: String,
    /// The Arrow type a query returns it as.
    pub arrow_type: DataType,
    /// Whether it may be NULL.
    pub nullable: bool,
}

/// A table or view.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Schema (PostgreSQL) or database (MySQL).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Primary-key columns, in key order.
    pub primary_key: Vec<String>,
    /// The database's estimate.
    pub estimated_rows: u64,
}

impl Table {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

pub use sluice_types::Dialect;

/// What tells apart plugins that share one implementation across
/// databases (the `postgres` and `mysql` sources, say): their name and the
/// database they accept.
pub trait Flavor: 'static {
    /// The plugin's name.
    const NAME: &'static str;
    /// One line for `sluice plugin list`.
    const DESCRIPTION: &'static str;
    /// The database it works with.
    const DIALECT: Dialect;
}

/// An open connection.
pub struct Connection {
    #[cfg(target_arch = "wasm32")]
    inner: wit::Connection,
    dialect: Dialect,
}

/// A query's result, batch by batch.
pub struct Rows {
    #[cfg(target_arch = "wasm32")]
    inner: wit::Rows,
    schema: SchemaRef,
}

#[cfg(target_arch = "wasm32")]
fn to_wit(params: &[Value]) -> Vec<wit::Value> {
    params
        .iter()
        .map(|v| match v {
            Value::Null => wit::Value::Null,
            Value::Bool(b) => wit::Value::Boolean(*b),
            Value::Int(i) => wit::Value::Integer(*i),
            Value::Float(f) => wit::Value::Float(*f),
            Value::Text(s) => wit::Value::Text(s.clone()),
            Value::Bytes(b) => wit::Value::Bytes(b.clone()),
        })
        .collect()
}

#[cfg(target_arch = "wasm32")]
fn from_wit(t: wit::TableInfo) -> Result<Table> {
    Ok(Table {
        namespace: t.namespace,
        name: t.name,
        columns: t
            .columns
            .into_iter()
            .map(|c| {
                Ok(Column {
                    arrow_type: crate::types::parse_type(&c.arrow_type).map_err(Error::internal)?,
                    name: c.name,
                    database_type: c.database_type,
                    nullable: c.nullable,
                })
            })
            .collect::<Result<_>>()?,
        primary_key: t.primary_key,
        estimated_rows: t.estimated_rows,
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn no_native() -> Error {
    Error::config(
        "the native test harness has no `sql` capability: test database plugins through the host",
    )
}

impl Connection {
    /// Open the connection the job granted under `name`.
    ///
    /// # Errors
    /// A config error when it is not granted; auth and transient errors
    /// from the database.
    pub fn open(name: &str) -> Result<Connection> {
        #[cfg(target_arch = "wasm32")]
        {
            let inner = wit::Connection::open(name)?;
            let dialect = match inner.dialect().as_str() {
                "mysql" => Dialect::MySql,
                _ => Dialect::Postgres,
            };
            Ok(Connection { inner, dialect })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = name;
            Err(no_native())
        }
    }

    /// Open `name` for a plugin of flavor `F`, refusing a connection to
    /// another kind of database with a message saying which plugin to use.
    ///
    /// # Errors
    /// As [`Connection::open`], and a config error for the wrong database.
    pub fn open_for<F: Flavor>(name: &str) -> Result<Connection> {
        let conn = Connection::open(name)?;
        if conn.dialect() != F::DIALECT {
            return Err(Error::config(format!(
                "connection `{name}` is a {} database; the {} plugin works with {}",
                conn.dialect().product(),
                F::NAME,
                F::DIALECT.product()
            )));
        }
        Ok(conn)
    }

    /// How to write SQL for this database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Tables and views in `namespace`, or in every user schema.
    ///
    /// # Errors
    /// The database's error.
    pub fn tables(&self, namespace: Option<&str>) -> Result<Vec<Table>> {
        #[cfg(target_arch = "wasm32")]
        return self
            .inner
            .tables(namespace)?
            .into_iter()
            .map(from_wit)
            .collect();
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = namespace;
            Err(no_native())
        }
    }

    /// One table; a config error naming it when it does not exist.
    ///
    /// # Errors
    /// As described.
    pub fn table(&self, name: &str) -> Result<Table> {
        #[cfg(target_arch = "wasm32")]
        return from_wit(self.inner.table(name)?);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = name;
            Err(no_native())
        }
    }

    /// Run a query; rows come back in batches of up to `batch_rows`.
    ///
    /// # Errors
    /// The database's error: a missing column is a config error naming it.
    pub fn query(&self, statement: &str, params: &[Value], batch_rows: u32) -> Result<Rows> {
        #[cfg(target_arch = "wasm32")]
        {
            let inner = self.inner.query(statement, &to_wit(params), batch_rows)?;
            let schema = crate::decode_schema(&inner.schema())?;
            Ok(Rows { inner, schema })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (statement, params, batch_rows);
            Err(no_native())
        }
    }

    /// Run statements that return no rows; the rows affected.
    ///
    /// # Errors
    /// The database's error.
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<u64> {
        #[cfg(target_arch = "wasm32")]
        return Ok(self.inner.execute(statement, &to_wit(params))?);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (statement, params);
            Err(no_native())
        }
    }
}

impl Connection {
    /// Bulk-load `rows` into `table` (SQL syntax, quoted as needed):
    /// binary COPY on PostgreSQL, without the rows entering wasm memory.
    ///
    /// # Errors
    /// Config errors for columns the table lacks; data errors naming the
    /// column and row of a value that does not fit.
    pub fn load(&self, table: &str, rows: &Batch) -> Result<u64> {
        #[cfg(target_arch = "wasm32")]
        return Ok(self.inner.load(table, &rows.0)?);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (table, rows);
            Err(no_native())
        }
    }
}

impl Rows {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next batch, or `None` after the last.
    ///
    /// # Errors
    /// The database's error; a dropped connection is transient.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        #[cfg(target_arch = "wasm32")]
        return Ok(self.inner.next()?.map(Batch));
        #[cfg(not(target_arch = "wasm32"))]
        Err(no_native())
    }
}
