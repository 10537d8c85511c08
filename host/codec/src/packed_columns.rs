//! The packed forms of plain columns (`int64-base64`, `float64-base64`,
//! `boolean-base64`, `text-joined`): a whole column in one string, for
//! guests whose bindings lower a list value by value.
//!
//! componentize-py spends about 200 ns lowering each value of a
//! `list<s64>` or `list<string>`, and never frees a `list<u8>` it lowers
//! into a host call's argument; one string it copies once and frees. Python
//! packs a column with C loops (`array.tobytes`, `binascii`, `str.join`), so
//! a column crosses in a few nanoseconds a value either way.

use arrow::array::{Array, StringArray};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sluice_types::plain_columns::ColumnValues;

/// `values` with a packed numeric form decoded into its plain form; other
/// forms (and `text-joined`, which is split as its array is built) as given.
///
/// # Errors
/// Text that is not base64, bytes that are not a whole number of values,
/// a boolean byte other than 0 and 1.
pub(crate) fn unpack_numbers(values: ColumnValues) -> Result<ColumnValues, String> {
    Ok(match values {
        ColumnValues::Int64Base64(text) => ColumnValues::Int64(
            words(&text, "int64-base64")?
                .map(i64::from_le_bytes)
                .collect(),
        ),
        ColumnValues::Float64Base64(text) => ColumnValues::Float64(
            words(&text, "float64-base64")?
                .map(f64::from_le_bytes)
                .collect(),
        ),
        ColumnValues::BooleanBase64(text) => {
            let bytes = decode(&text, "boolean-base64")?;
            if let Some(row) = bytes.iter().position(|&b| b > 1) {
                return Err(format!(
                    "boolean-base64: row {row} is the byte {}, not 0 or 1",
                    bytes[row]
                ));
            }
            ColumnValues::Boolean(bytes.into_iter().map(|b| b == 1).collect())
        }
        other => other,
    })
}

/// The values of a `text-joined` column, each `separator`-terminated.
///
/// # Errors
/// Text that does not end with its separator.
pub(crate) fn joined_values(separator: char, text: &str) -> Result<Vec<&str>, String> {
    if !text.is_empty() && !text.ends_with(separator) {
        return Err(format!(
            "text-joined: the text does not end with its separator {separator:?}"
        ));
    }
    Ok(text.split_terminator(separator).collect())
}

fn decode(text: &str, form: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("{form}: not base64: {e}"))
}

/// The 8-byte words of a base64 text.
fn words(text: &str, form: &str) -> Result<impl Iterator<Item = [u8; 8]>, String> {
    let bytes = decode(text, form)?;
    if bytes.len() % 8 != 0 {
        return Err(format!(
            "{form}: {} bytes is not a whole number of 8-byte values",
            bytes.len()
        ));
    }
    Ok((0..bytes.len() / 8).map(move |i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        word
    }))
}

/// `values` in its packed form, when it has one.
pub(crate) fn pack(values: ColumnValues) -> ColumnValues {
    match values {
        ColumnValues::Int64(v) => {
            ColumnValues::Int64Base64(encode_words(v.iter().map(|x| x.to_le_bytes()), v.len()))
        }
        ColumnValues::Float64(v) => {
            ColumnValues::Float64Base64(encode_words(v.iter().map(|x| x.to_le_bytes()), v.len()))
        }
        ColumnValues::Boolean(v) => {
            let bytes: Vec<u8> = v.iter().map(|&b| u8::from(b)).collect();
            ColumnValues::BooleanBase64(STANDARD.encode(bytes))
        }
        other => other,
    }
}

fn encode_words(words: impl Iterator<Item = [u8; 8]>, len: usize) -> String {
    let mut bytes = Vec::with_capacity(len * 8);
    for word in words {
        bytes.extend_from_slice(&word);
    }
    STANDARD.encode(bytes)
}

/// A string array as `text-joined`, or `None` when every control
/// character occurs in its data (a null row is an empty value).
///
/// The separator is the highest ASCII control character (`\x1f` first)
/// the data does not hold: one byte in UTF-8 and never a byte of a
/// multi-byte character, so scanning bytes finds every occurrence.
pub(crate) fn join(strings: &StringArray) -> Option<ColumnValues> {
    let mut seen = [false; 32];
    for &b in strings.value_data() {
        if b < 32 {
            seen[b as usize] = true;
        }
    }
    let separator = char::from((0..32u8).rev().find(|&s| !seen[s as usize])?);
    let mut text = String::with_capacity(strings.value_data().len() + strings.len());
    for i in 0..strings.len() {
        if strings.is_valid(i) {
            text.push_str(strings.value(i));
        }
        text.push(separator);
    }
    Some(ColumnValues::TextJoined { separator, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_through_their_packed_forms() {
        for values in [
            ColumnValues::Int64(vec![0, -1, i64::MIN, i64::MAX, 42]),
            ColumnValues::Float64(vec![0.5, -0.0, f64::MAX, f64::INFINITY]),
            ColumnValues::Boolean(vec![true, false, false, true]),
            ColumnValues::Int64(vec![]),
        ] {
            let packed = pack(values.clone());
            assert!(packed.is_packed(), "{packed:?}");
            assert_eq!(unpack_numbers(packed).unwrap(), values);
        }
    }

    #[test]
    fn packed_numbers_that_are_not_whole_values_are_refused() {
        let short = ColumnValues::Int64Base64(STANDARD.encode([1u8; 7]));
        assert!(unpack_numbers(short).unwrap_err().contains("7 bytes"));
        let bad = ColumnValues::Float64Base64("not base64!".into());
        assert!(unpack_numbers(bad).unwrap_err().contains("not base64"));
        let two = ColumnValues::BooleanBase64(STANDARD.encode([0u8, 1, 2]));
        assert!(unpack_numbers(two).unwrap_err().contains("row 2"));
    }

    #[test]
    fn joined_text_splits_at_each_terminator() {
        assert_eq!(joined_values(';', "a;b;;").unwrap(), ["a", "b", ""]);
        assert!(joined_values(';', "").unwrap().is_empty());
        assert!(joined_values(';', "a;b").is_err());
    }

    #[test]
    fn join_picks_a_separator_the_values_do_not_hold() {
        let strings = StringArray::from(vec![Some("a\u{1f}b"), None, Some("日本")]);
        let Some(ColumnValues::TextJoined { separator, text }) = join(&strings) else {
            panic!("not joined")
        };
        assert_eq!(separator, '\u{1e}');
        assert_eq!(
            joined_values(separator, &text).unwrap(),
            ["a\u{1f}b", "", "日本"]
        );
        let every: String = (0u8..32).map(char::from).collect();
        assert!(join(&StringArray::from(vec![every])).is_none());
    }
}
