//! PostgreSQL types and the Arrow types they become.
//!
//! Each result column is read in COPY's binary format and decoded natively.
//! A type with no mapping here is selected as `::text` instead: the value
//! arrives exactly as PostgreSQL prints it, and the run never fails on it.

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

/// How one result column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// `bool`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `oid`: unsigned 32-bit.
    Oid,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `numeric(p, s)` with p ≤ 38.
    Numeric {
        /// Digits in all.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `text`, `varchar`, `char(n)`, `name`, enums, and everything selected
    /// as text: bytes that are UTF-8 text on the wire.
    Text,
    /// `json`: text on the wire.
    Json,
    /// `jsonb`: a version byte, then text.
    Jsonb,
    /// `bytea`
    Bytea,
    /// `uuid`: 16 bytes, written as the usual 36-character text.
    Uuid,
    /// `date`
    Date,
    /// `time` (without time zone)
    Time,
    /// `timestamp` (without time zone)
    Timestamp,
    /// `timestamptz`: an instant, kept in UTC.
    Timestamptz,
    /// `interval`: months, days and microseconds.
    Interval,
    /// A one-dimensional array of a mapped element type.
    Array(Box<PgType>),
}

/// Well-known type OIDs (fixed in every PostgreSQL since 8.x).
pub mod oid {
    #![allow(missing_docs)]
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// What the catalog says about a type that is not built in.
#[derive(Debug, Clone, Default)]
pub struct CatalogType {
    /// `typtype`: `e` for enums, `d` for domains.
    pub kind: char,
    /// `typcategory`: `A` for arrays (`point` has an element type too).
    pub category: char,
    /// Arrays: the element type.
    pub element: Option<u32>,
    /// Domains: the base type.
    pub base: Option<u32>,
}

impl PgType {
    /// The mapping of a built-in scalar type, with its type modifier
    /// (`numeric(12,2)` has one; -1 means none).
    pub fn builtin(oid: u32, typmod: i32) -> Option<PgType> {
        Some(match oid {
            oid::BOOL => PgType::Bool,
            oid::INT2 => PgType::Int2,
            oid::INT4 => PgType::Int4,
            oid::INT8 => PgType::Int8,
            oid::OID => PgType::Oid,
            oid::FLOAT4 => PgType::Float4,
            oid::FLOAT8 => PgType::Float8,
            oid::NUMERIC => return numeric(typmod),
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => PgType::Text,
            oid::JSON => PgType::Json,
            oid::JSONB => PgType::Jsonb,
            oid::BYTEA => PgType::Bytea,
            oid::UUID => PgType::Uuid,
            oid::DATE => PgType::Date,
            oid::TIME => PgType::Time,
            oid::TIMESTAMP => PgType::Timestamp,
            oid::TIMESTAMPTZ => PgType::Timestamptz,
            oid::INTERVAL => PgType::Interval,
            _ => return None,
        })
    }

    /// The mapping of any type, looking non-built-in ones up in `catalog`.
    /// `None`: select it as text.
    pub fn resolve(
        oid: u32,
        typmod: i32,
        catalog: &dyn Fn(u32) -> Option<CatalogType>,
    ) -> Option<PgType> {
        if let Some(t) = PgType::builtin(oid, typmod) {
            return Some(t);
        }
        let entry = catalog(oid)?;
        match entry.kind {
            // Enum values travel as their labels.
            'e' => Some(PgType::Text),
            'd' => PgType::resolve(entry.base?, typmod, catalog),
            _ if entry.category != 'A' => None,
            _ => {
                let element = PgType::resolve(entry.element?, typmod, catalog)?;
                match element {
                    PgType::Array(_) => None,
                    e => Some(PgType::Array(Box::new(e))),
                }
            }
        }
    }

    /// The OID of a built-in scalar type (array element types need it).
    pub fn oid(&self) -> Option<u32> {
        Some(match self {
            PgType::Bool => oid::BOOL,
            PgType::Int2 => oid::INT2,
            PgType::Int4 => oid::INT4,
            PgType::Int8 => oid::INT8,
            PgType::Oid => oid::OID,
            PgType::Float4 => oid::FLOAT4,
            PgType::Float8 => oid::FLOAT8,
            PgType::Numeric { .. } => oid::NUMERIC,
            PgType::Text => oid::TEXT,
            PgType::Json => oid::JSON,
            PgType::Jsonb => oid::JSONB,
            PgType::Bytea => oid::BYTEA,
            PgType::Uuid => oid::UUID,
            PgType::Date => oid::DATE,
            PgType::Time => oid::TIME,
            PgType::Timestamp => oid::TIMESTAMP,
            PgType::Timestamptz => oid::TIMESTAMPTZ,
            PgType::Interval => oid::INTERVAL,
            PgType::Array(_) => return None,
        })
    }

    /// The Arrow type values of this column become.
    pub fn arrow_type(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Oid => DataType::UInt32,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            PgType::Text | PgType::Json | PgType::Jsonb | PgType::Uuid => DataType::Utf8,
            PgType::Bytea => DataType::Binary,
            PgType::Date => DataType::Date32,
            PgType::Time => DataType::Time64(TimeUnit::Microsecond),
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            PgType::Array(element) => {
                DataType::List(Field::new("item", element.arrow_type(), true).into())
            }
        }
    }
}

/// `numeric(p, s)` fits a 128-bit decimal when p ≤ 38. Without a modifier
/// (plain `numeric`) any scale is possible, so it is read as text: exact,
/// never an error halfway through a run.
fn numeric(typmod: i32) -> Option<PgType> {
    if typmod < 4 {
        return None;
    }
    let m = typmod - 4;
    let precision = (m >> 16) & 0xffff;
    // The scale is an 11-bit signed field since PostgreSQL 15.
    let scale = ((m & 0x7ff) ^ 0x400) - 0x400;
    if !(1..=38).contains(&precision) || scale < 0 || scale > precision {
        return None;
    }
    Some(PgType::Numeric {
        precision: precision as u8,
        scale: scale as i8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_modifiers() {
        // numeric(12,2): ((12 << 16) | 2) + 4
        assert_eq!(
            PgType::builtin(oid::NUMERIC, ((12 << 16) | 2) + 4),
            Some(PgType::Numeric {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!(PgType::builtin(oid::NUMERIC, -1), None);
        assert_eq!(PgType::builtin(oid::NUMERIC, (50 << 16) + 4), None);
    }

    #[test]
    fn arrays_enums_and_domains_resolve_through_the_catalog() {
        let catalog = |oid: u32| match oid {
            1007 => Some(CatalogType {
                kind: 'b',
                category: 'A',
                element: Some(oid::INT4),
                base: None,
            }),
            600 => Some(CatalogType {
                kind: 'b',
                category: 'G',
                element: Some(oid::FLOAT8),
                base: None,
            }),
            9000 => Some(CatalogType {
                kind: 'e',
                ..Default::default()
            }),
            9001 => Some(CatalogType {
                kind: 'd',
                base: Some(oid::TEXT),
                ..Default::default()
            }),
            _ => None,
        };
        assert_eq!(
            PgType::resolve(1007, -1, &catalog),
            Some(PgType::Array(Box::new(PgType::Int4)))
        );
        assert_eq!(PgType::resolve(9000, -1, &catalog), Some(PgType::Text));
        assert_eq!(PgType::resolve(9001, -1, &catalog), Some(PgType::Text));
        assert_eq!(PgType::resolve(600, -1, &catalog), None); // point: as text
    }
}
