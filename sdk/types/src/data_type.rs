//! Type names users write in configs (`int64`, `decimal(12,2)`, `date`).

use arrow_schema::{DataType, TimeUnit};

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
}
