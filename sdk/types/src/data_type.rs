//! Type names users write in configs (`int64`, `decimal(12,2)`, `date`).

use arrow_schema::{DataType, IntervalUnit, TimeUnit};

/// Parse a user's type name: friendly names first, then Arrow's own syntax
/// (`Timestamp(Millisecond, None)`).
///
/// # Errors
/// A message listing the accepted names.
pub fn parse_type(name: &str) -> Result<DataType, String> {
    let lower = name.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" | "smallint" => DataType::Int16,
        "int32" | "int" | "integer" => DataType::Int32,
        "int64" | "long" | "bigint" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" | "float" | "real" => DataType::Float32,
        "float64" | "double" => DataType::Float64,
        "string" | "text" | "utf8" | "varchar" => DataType::Utf8,
        "binary" | "bytes" => DataType::Binary,
        "date" | "date32" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "time" => DataType::Time64(TimeUnit::Microsecond),
        "interval" => DataType::Interval(IntervalUnit::MonthDayNano),
        _ => {
            if let Some(args) = lower
                .strip_prefix("decimal(")
                .and_then(|s| s.strip_suffix(')'))
            {
                let mut it = args.split(',').map(|s| s.trim().parse::<i64>());
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(p)), Some(Ok(s)), None) if (1..=38).contains(&p) && s <= p => {
                        DataType::Decimal128(p as u8, s as i8)
                    }
                    _ => return Err(format!("bad decimal type `{name}`: use decimal(P,S)")),
                }
            } else {
                name.parse::<DataType>().map_err(|_| {
                    format!(
                        "unknown type `{name}`: use bool, int32, int64, float64, string, date, timestamp, decimal(P,S), …"
                    )
                })?
            }
        }
    })
}

/// The name [`parse_type`] reads back: friendly where there is one,
/// Arrow's own syntax otherwise. What `discover` shows users.
pub fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Time64(TimeUnit::Microsecond) => "time".into(),
        DataType::Interval(IntervalUnit::MonthDayNano) => "interval".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
            "timestamptz".into()
        }
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_type("INT64").unwrap(), DataType::Int64);
        assert_eq!(
            parse_type("decimal(12, 2)").unwrap(),
            DataType::Decimal128(12, 2)
        );
        assert!(parse_type("decimal(50,2)").is_err());
        assert!(parse_type("nonsense").is_err());
    }

    #[test]
    fn names_round_trip() {
        for dt in [
            DataType::Int64,
            DataType::Decimal128(12, 2),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Interval(IntervalUnit::MonthDayNano),
            DataType::List(arrow_schema::Field::new("item", DataType::Int32, true).into()),
        ] {
            assert_eq!(
                parse_type(&type_name(&dt)).unwrap(),
                dt,
                "{}",
                type_name(&dt)
            );
        }
    }
}
