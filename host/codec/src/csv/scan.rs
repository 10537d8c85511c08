//! The byte-level work of reading CSV: finding where a field ends, and
//! parsing the common number and date shapes without a general parser.
//!
//! Every fast parser here accepts only a shape it can convert exactly
//! (`-123`, `68922.91`, `1996-11-26`) and answers `None` for anything else,
//! so the caller falls back to Arrow's own parser and the result is always
//! what Arrow's CSV reader would give.

/// Looks for the bytes that can end an unquoted field: the delimiter, `\n`
/// and `\r`, eight bytes at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldEnd {
    delimiter: u64,
    byte: u8,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const NEWLINES: u64 = ONES * b'\n' as u64;
const RETURNS: u64 = ONES * b'\r' as u64;

/// A high bit in every byte of `x` that is zero. Bits above the lowest
/// can be wrong (a borrow runs on), so only the lowest is used.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

impl FieldEnd {
    pub(crate) fn new(delimiter: u8) -> Self {
        FieldEnd {
            delimiter: ONES * u64::from(delimiter),
            byte: delimiter,
        }
    }

    /// Whether `b` ends an unquoted field.
    #[inline(always)]
    pub(crate) fn ends(&self, b: u8) -> bool {
        b == self.byte || b == b'\n' || b == b'\r'
    }

    /// The index of the first byte at or after `from` that ends a field,
    /// or `None` if `data` ends first.
    #[inline]
    pub(crate) fn find(&self, data: &[u8], from: usize) -> Option<usize> {
        let mut at = from;
        while let Some(word) = data.get(at..at + 8) {
            let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let hits =
                zero_bytes(w ^ self.delimiter) | zero_bytes(w ^ NEWLINES) | zero_bytes(w ^ RETURNS);
            if hits != 0 {
                return Some(at + (hits.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        data.get(at..)?
            .iter()
            .position(|&b| self.ends(b))
            .map(|i| at + i)
    }
}

/// `[+-]?[0-9]{1,18}` as an `i64`; `None` for any other shape (the caller
/// then asks Arrow's parser, which also takes 19 digits).
#[inline]
pub(crate) fn int64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i64::from(d);
    }
    Some(if negative { -value } else { value })
}

/// Exact powers of ten as doubles: 10^0 to 10^22.
const POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A plain decimal `[+-]?[0-9]+(\.[0-9]+)?` as the nearest double; `None`
/// for any other shape (exponents, `inf`, spaces: Arrow's parser then
/// decides).
///
/// Up to 2^53 in its digits and 22 after the point, both the digits and the
/// power of ten are exact doubles, so one division rounds correctly
/// (Clinger's fast path). Longer numbers go to the standard library's
/// parser, which also rounds correctly: for these shapes every correct
/// parser, Arrow's included, gives the same double.
#[inline]
pub(crate) fn float64(text: &[u8]) -> Option<f64> {
    let (negative, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    // Digits, then optionally a point and more digits; the mantissa wraps
    // past 19 digits, which then go the exact way.
    let mut mantissa: u64 = 0;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut fraction = 0;
    if i < body.len() {
        if body[i] != b'.' {
            return None;
        }
        for &b in &body[i + 1..] {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        }
        fraction = body.len() - i - 1;
        if fraction == 0 {
            return None;
        }
    }
    let digits = body.len() - usize::from(fraction > 0);
    if digits > 19 || mantissa > 1 << 53 || fraction >= POWERS.len() {
        return exact_float(text);
    }
    let value = mantissa as f64 / POWERS[fraction];
    Some(if negative { -value } else { value })
}

/// A plain decimal too long for the fast path, by the standard library's
/// correctly rounding parser (only ever called on that shape).
#[cold]
fn exact_float(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `YYYY-MM-DD` as days since 1970-01-01; `None` for any other shape or an
/// impossible date (Arrow's parser then decides, and refuses it).
#[inline]
pub(crate) fn date32(text: &[u8]) -> Option<i32> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *text else {
        return None;
    };
    let digit = |b: u8| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then_some(i32::from(d))
    };
    let year = digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?;
    let month = digit(m0)? * 10 + digit(m1)?;
    let day = digit(d0)? * 10 + digit(d1)?;
    if year == 0 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(
        days_before_year(year)
            + DAYS_BEFORE_MONTH[usize::from(leap(year))][month as usize - 1]
            + day
            - 1,
    )
}

fn leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to January 1st of `year` (from 1 on).
fn days_before_year(year: i32) -> i32 {
    let y = year - 1;
    y * 365 + y / 4 - y / 100 + y / 400 - 719_162
}

/// Days in a year before each month, in common and in leap years.
const DAYS_BEFORE_MONTH: [[i32; 12]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335],
];

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::compute::kernels::cast_utils::Parser;
    use arrow::datatypes::{Date32Type, Float64Type, Int64Type};

    /// A small deterministic generator of test strings.
    struct Strings(u64);
    impl Strings {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.next() as usize % from.len()]
        }
        /// Digits, signs, points, exponents and junk in short random runs.
        fn number(&mut self) -> String {
            let len = 1 + self.next() % 24;
            (0..len)
                .map(|_| {
                    self.pick(&[
                        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "9", "0", ".", "-", "+",
                        "e", "E", " ", "x",
                    ])
                })
                .collect()
        }
    }

    #[test]
    fn field_ends_are_found_in_every_position() {
        let find = FieldEnd::new(b',');
        for len in 0..40 {
            for end in 0..=len {
                let mut data = vec![b'a'; len];
                if end < len {
                    data[end] = b',';
                }
                let want = (end < len).then_some(end);
                assert_eq!(find.find(&data, 0), want, "len {len}, end {end}");
                for special in [b'\n', b'\r'] {
                    if end < len {
                        data[end] = special;
                        assert_eq!(find.find(&data, 0), want);
                    }
                }
            }
        }
        // Bytes one above or below a special byte are not special.
        let data = b"+-\x0b\x0c\x09\x0eab,";
        assert_eq!(find.find(data, 0), Some(8));
        assert_eq!(find.find(b"ab\r\ncd", 1), Some(2));
        assert_eq!(FieldEnd::new(b'\t').find(b"a,b\tc", 0), Some(3));
    }

    #[test]
    fn numbers_parse_as_arrow_parses_them() {
        let mut strings = Strings(1);
        let mut fast = 0;
        let mut cases: Vec<String> = (0..200_000).map(|_| strings.number()).collect();
        cases.extend(
            [
                "0",
                "-0",
                "+0",
                "-0.0",
                "9007199254740992",
                "9007199254740993",
                "123456789012345678",
                "1234567890123456789",
                "12345678901234567890",
                "-9223372036854775808",
                "9223372036854775807",
                "0.1",
                "0.30000000000000004",
                "344.19071652363755",
                "68922.91",
                "1.",
                ".5",
                "1e5",
                "00012.500",
                "1.7976931348623157e308",
                "4.9406564584124654e-324",
                "0.0000000000000000000001",
                "0.00000000000000000000001",
            ]
            .map(String::from),
        );
        for text in &cases {
            let ours = int64(text.as_bytes());
            if ours.is_some() {
                fast += 1;
                assert_eq!(ours, Int64Type::parse(text), "int64 {text:?}");
            }
            if let Some(ours) = float64(text.as_bytes()) {
                let arrow = Float64Type::parse(text).expect("arrow parses what we parse");
                assert_eq!(ours.to_bits(), arrow.to_bits(), "float64 {text:?}");
            }
        }
        assert!(fast > 10_000, "the fast paths were hardly tried: {fast}");
    }

    #[test]
    fn dates_parse_as_arrow_parses_them() {
        let mut strings = Strings(2);
        let mut fast = 0;
        let mut texts: Vec<String> = (0..100_000)
            .map(|_| {
                let year = strings.next() % 10_000;
                let month = strings.next() % 14;
                let day = strings.next() % 33;
                format!("{year:04}-{month:02}-{day:02}")
            })
            .collect();
        texts.extend(
            [
                "2024-02-29",
                "2023-02-29",
                "2000-02-29",
                "1900-02-29",
                "1970-01-01",
                "0001-01-01",
            ]
            .map(String::from),
        );
        for text in &texts {
            let arrow = Date32Type::parse(text);
            // What the fast path takes, it reads as Arrow does; what it
            // leaves (impossible dates, the year 0) Arrow decides.
            if let Some(ours) = date32(text.as_bytes()) {
                fast += 1;
                assert_eq!(Some(ours), arrow, "{text}");
            } else if arrow.is_some() {
                assert!(
                    text.starts_with("0000"),
                    "{text} should have taken the fast path"
                );
            }
        }
        assert!(fast > 50_000, "{fast}");
        // Other shapes are left to Arrow.
        assert_eq!(date32(b"2024-1-05"), None);
        assert_eq!(date32(b"+2024-01-05"), None);
    }
}
