//! The row predicate language of `where:`.
//!
//! ```text
//! amount > 0 and country = 'JP'
//! (status in ('paid', 'shipped') or refund is not null) and not flagged
//! ```
//! Comparisons `= != <> < <= > >=`, `and`, `or`, `not`, parentheses,
//! `is [not] null`, `[not] in (…)`; literals are numbers, 'strings' (with
//! '' for a quote), true, false, null. Columns are bare names, or
//! "quoted" / `backticked` when they hold other characters. Rows where the
//! predicate is null (a comparison with null) are dropped, as in SQL.

use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, NullArray, RecordBatch, Scalar,
    StringArray,
};
use arrow_buffer::BooleanBuffer;
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::DataType;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`, `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A whole number.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A quoted string.
    Str(String),
    /// true / false.
    Bool(bool),
    /// null.
    Null,
}

/// A parsed predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column by name.
    Column(String),
    /// A literal.
    Lit(Literal),
    /// `a op b`.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a and b`.
    And(Box<Expr>, Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
    /// `not a`.
    Not(Box<Expr>),
    /// `a is null` (`negated`: `is not null`).
    IsNull(Box<Expr>, bool),
    /// `a in (…)` (`negated`: `not in`).
    In(Box<Expr>, Vec<Literal>, bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((Token::LParen, at));
                i += 1
            }
            ')' => {
                out.push((Token::RParen, at));
                i += 1
            }
            ',' => {
                out.push((Token::Comma, at));
                i += 1
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string starting at {}", at + 1)),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1
                        }
                    }
                }
                out.push((Token::Str(s), at));
            }
            '"' | '`' => {
                let close = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated column name at {}", at + 1)),
                        Some(ch) if *ch == close => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1
                        }
                    }
                }
                out.push((Token::Ident(s), at));
            }
            '=' => {
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                out.push((Token::Op("="), at));
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                out.push((Token::Op("!="), at));
            }
            '<' => {
                let (op, n) = match chars.get(i + 1) {
                    Some('=') => ("<=", 2),
                    Some('>') => ("!=", 2),
                    _ => ("<", 1),
                };
                i += n;
                out.push((Token::Op(op), at));
            }
            '>' => {
                let (op, n) = if chars.get(i + 1) == Some(&'=') {
                    (">=", 2)
                } else {
                    (">", 1)
                };
                i += n;
                out.push((Token::Op(op), at));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut s = String::from(c);
                i += 1;
                while let Some(&d) = chars.get(i) {
                    let exp_sign =
                        (d == '-' || d == '+') && matches!(s.chars().last(), Some('e' | 'E'));
                    if d.is_ascii_digit()
                        || d == '.'
                        || d == 'e'
                        || d == 'E'
                        || d == '_'
                        || exp_sign
                    {
                        if d != '_' {
                            s.push(d);
                        }
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Token::Num(s), at));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&d) = chars.get(i) {
                    if d.is_alphanumeric() || d == '_' || d == '.' {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Token::Ident(s), at));
            }
            other => return Err(format!("unexpected `{other}` at {}", at + 1)),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }
    fn at(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(_, a)| a + 1)
            .unwrap_or(self.len + 1)
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: Token, what: &str) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {what} at {}", self.at()))
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.eat_keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_keyword("not") {
            Ok(Expr::Not(Box::new(self.not()?)))
        } else {
            self.cmp()
        }
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        if let Some(Token::Op(op)) = self.peek().cloned() {
            self.pos += 1;
            let op = match op {
                "=" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            let right = self.operand()?;
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(right)));
        }
        if self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            if !self.eat_keyword("null") {
                return Err(format!("expected `null` after `is` at {}", self.at()));
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = if self.keyword("not")
            && matches!(self.tokens.get(self.pos + 1), Some((Token::Ident(s), _)) if s.eq_ignore_ascii_case("in"))
        {
            self.pos += 1;
            true
        } else {
            false
        };
        if self.eat_keyword("in") {
            self.expect(Token::LParen, "`(` after `in`")?;
            let mut items = Vec::new();
            loop {
                match self.operand()? {
                    Expr::Lit(l) => items.push(l),
                    _ => return Err(format!("`in (…)` takes literals only, at {}", self.at())),
                }
                if self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            self.expect(Token::RParen, "`)` closing `in (…)`")?;
            return Ok(Expr::In(Box::new(left), items, negated));
        }
        Ok(left)
    }
    fn operand(&mut self) -> Result<Expr, String> {
        let at = self.at();
        let Some((token, _)) = self.tokens.get(self.pos).cloned() else {
            return Err(format!("expression ends early, at {at}"));
        };
        self.pos += 1;
        match token {
            Token::LParen => {
                let e = self.or()?;
                self.expect(Token::RParen, "`)`")?;
                Ok(e)
            }
            Token::Str(s) => Ok(Expr::Lit(Literal::Str(s))),
            Token::Num(n) => {
                if n.contains(['.', 'e', 'E']) {
                    n.parse()
                        .map(|f| Expr::Lit(Literal::Float(f)))
                        .map_err(|_| format!("bad number `{n}` at {at}"))
                } else {
                    n.parse()
                        .map(|i| Expr::Lit(Literal::Int(i)))
                        .map_err(|_| format!("bad number `{n}` at {at}"))
                }
            }
            Token::Ident(s) => Ok(match s.to_ascii_lowercase().as_str() {
                "true" => Expr::Lit(Literal::Bool(true)),
                "false" => Expr::Lit(Literal::Bool(false)),
                "null" => Expr::Lit(Literal::Null),
                "and" | "or" | "not" | "is" | "in" => {
                    return Err(format!("expected a column or value at {at}, found `{s}`"));
                }
                _ => Expr::Column(s),
            }),
            other => Err(format!(
                "expected a column or value at {at}, found {other:?}"
            )),
        }
    }
}

/// Parse a predicate.
///
/// # Errors
/// A message with the 1-based character position of the problem.
pub fn parse(src: &str) -> Result<Expr, String> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        len: src.chars().count(),
        tokens,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected {:?} at {}", p.tokens[p.pos].0, p.at()));
    }
    Ok(e)
}

impl Expr {
    /// Every column the expression names.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Column(c) => out.push(c.clone()),
            Expr::Lit(_) => {}
            Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Not(a) | Expr::IsNull(a, _) | Expr::In(a, _, _) => a.columns(out),
        }
    }
}

/// An evaluated operand: a column, or one value for every row.
enum Value {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Value {
    fn array(&self) -> &ArrayRef {
        match self {
            Value::Array(a) | Value::Scalar(a) => a,
        }
    }
    fn data_type(&self) -> &DataType {
        self.array().data_type()
    }
    fn datum(&self) -> Box<dyn Datum + '_> {
        match self {
            Value::Array(a) => Box::new(a),
            Value::Scalar(a) => Box::new(Scalar::new(Arc::clone(a))),
        }
    }
    fn cast(self, to: &DataType) -> Result<Value, String> {
        if self.data_type() == to {
            return Ok(self);
        }
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let cast = |a: &ArrayRef| {
            cast_with_options(a, to, &options)
                .map_err(|e| format!("cannot compare {} with {to}: {e}", a.data_type()))
        };
        Ok(match self {
            Value::Array(a) => Value::Array(cast(&a)?),
            Value::Scalar(a) => Value::Scalar(cast(&a)?),
        })
    }
    fn into_array(self, rows: usize) -> Result<ArrayRef, String> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(a) => {
                let idx = arrow_array::UInt32Array::from(vec![0u32; rows]);
                arrow_select::take::take(&a, &idx, None).map_err(|e| e.to_string())
            }
        }
    }
}

fn literal_array(l: &Literal) -> ArrayRef {
    match l {
        Literal::Int(i) => Arc::new(Int64Array::from(vec![*i])),
        Literal::Float(f) => Arc::new(Float64Array::from(vec![*f])),
        Literal::Str(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        Literal::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Null => Arc::new(NullArray::new(1)),
    }
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

/// Bring two operands to one type, casting the side that loses nothing.
fn coerce(a: Value, b: Value) -> Result<(Value, Value), String> {
    let (ta, tb) = (a.data_type().clone(), b.data_type().clone());
    if ta == tb || ta == DataType::Null || tb == DataType::Null {
        return Ok((a, b));
    }
    let float = |t: &DataType| t.is_floating();
    let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
    if is_int(&ta) && is_int(&tb) {
        return Ok((a.cast(&DataType::Int64)?, b.cast(&DataType::Int64)?));
    }
    if (float(&ta) || float(&tb)) && ta.is_numeric() && tb.is_numeric() {
        return Ok((a.cast(&DataType::Float64)?, b.cast(&DataType::Float64)?));
    }
    if decimal(&ta) && is_int(&tb) {
        return Ok((a, b.cast(&ta)?));
    }
    if decimal(&tb) && is_int(&ta) {
        return Ok((a.cast(&tb)?, b));
    }
    // Otherwise the literal (scalar) side takes the column's type: a string
    // '2024-01-31' becomes a date, '12.50' a decimal.
    match (&a, &b) {
        (Value::Scalar(_), Value::Array(_)) => Ok((a.cast(&tb)?, b)),
        _ => Ok((a, b.cast(&ta)?)),
    }
}

fn boolean(v: Value, rows: usize, what: &str) -> Result<BooleanArray, String> {
    let v = if v.data_type() == &DataType::Null {
        v.cast(&DataType::Boolean)?
    } else {
        v
    };
    if v.data_type() != &DataType::Boolean {
        return Err(format!(
            "{what} needs a true/false value, got {}",
            v.data_type()
        ));
    }
    let array = v.into_array(rows)?;
    Ok(array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("checked type")
        .clone())
}

fn eval(e: &Expr, batch: &RecordBatch) -> Result<Value, String> {
    let rows = batch.num_rows();
    Ok(match e {
        Expr::Column(name) => Value::Array(
            batch
                .column_by_name(name)
                .ok_or_else(|| format!("unknown column `{name}`"))?
                .clone(),
        ),
        Expr::Lit(l) => Value::Scalar(literal_array(l)),
        Expr::Cmp(op, a, b) => {
            let (a, b) = coerce(eval(a, batch)?, eval(b, batch)?)?;
            if a.data_type() == &DataType::Null || b.data_type() == &DataType::Null {
                return Ok(Value::Array(Arc::new(BooleanArray::new_null(rows))));
            }
            let (da, db) = (a.datum(), b.datum());
            let r = match op {
                CmpOp::Eq => arrow_ord::cmp::eq(da.as_ref(), db.as_ref()),
                CmpOp::Ne => arrow_ord::cmp::neq(da.as_ref(), db.as_ref()),
                CmpOp::Lt => arrow_ord::cmp::lt(da.as_ref(), db.as_ref()),
                CmpOp::Le => arrow_ord::cmp::lt_eq(da.as_ref(), db.as_ref()),
                CmpOp::Gt => arrow_ord::cmp::gt(da.as_ref(), db.as_ref()),
                CmpOp::Ge => arrow_ord::cmp::gt_eq(da.as_ref(), db.as_ref()),
            }
            .map_err(|e| e.to_string())?;
            if matches!((&a, &b), (Value::Scalar(_), Value::Scalar(_))) {
                Value::Scalar(Arc::new(r))
            } else {
                Value::Array(Arc::new(r))
            }
        }
        Expr::And(a, b) => {
            let a = boolean(eval(a, batch)?, rows, "`and`")?;
            let b = boolean(eval(b, batch)?, rows, "`and`")?;
            Value::Array(Arc::new(and_kleene(&a, &b).map_err(|e| e.to_string())?))
        }
        Expr::Or(a, b) => {
            let a = boolean(eval(a, batch)?, rows, "`or`")?;
            let b = boolean(eval(b, batch)?, rows, "`or`")?;
            Value::Array(Arc::new(or_kleene(&a, &b).map_err(|e| e.to_string())?))
        }
        Expr::Not(a) => {
            let a = boolean(eval(a, batch)?, rows, "`not`")?;
            Value::Array(Arc::new(not(&a).map_err(|e| e.to_string())?))
        }
        Expr::IsNull(a, negated) => {
            let a = eval(a, batch)?.into_array(rows)?;
            let r = if *negated {
                is_not_null(&a)
            } else {
                is_null(&a)
            };
            Value::Array(Arc::new(r.map_err(|e| e.to_string())?))
        }
        Expr::In(a, items, negated) => {
            let column = eval(a, batch)?;
            if let Some(r) = strings_in(&column, items, *negated) {
                return Ok(Value::Array(Arc::new(r)));
            }
            let mut acc: Option<BooleanArray> = None;
            for item in items {
                let (x, y) = coerce(
                    Value::Array(column.array().clone()),
                    Value::Scalar(literal_array(item)),
                )?;
                let hit = if y.data_type() == &DataType::Null {
                    BooleanArray::new_null(rows)
                } else {
                    arrow_ord::cmp::eq(x.datum().as_ref(), y.datum().as_ref())
                        .map_err(|e| e.to_string())?
                };
                acc = Some(match acc {
                    None => hit,
                    Some(prev) => or_kleene(&prev, &hit).map_err(|e| e.to_string())?,
                });
            }
            let r = acc.unwrap_or_else(|| BooleanArray::from(vec![false; rows]));
            let r = if *negated {
                not(&r).map_err(|e| e.to_string())?
            } else {
                r
            };
            let r = if matches!(column, Value::Scalar(_)) {
                boolean(Value::Scalar(Arc::new(r)), rows, "`in`")?
            } else {
                r
            };
            Value::Array(Arc::new(r))
        }
    })
}

/// `column in ('a', 'b', …)` over a string column, in one pass.
///
/// The general path runs one equality kernel per item and ORs the results;
/// this reads each value once, with no call per row (in wasm, a `memcmp`
/// call per row was most of a string filter's time). When every item is at
/// most 8 bytes, a value is one masked 64-bit word compared with each item
/// without a branch: with values like `'alpha'`/`'bravo'` in random order a
/// length test per item mispredicts on most rows. `None` when it does not
/// apply.
fn strings_in(column: &Value, items: &[Literal], negated: bool) -> Option<BooleanArray> {
    let Value::Array(array) = column else {
        return None;
    };
    let strings = array.as_any().downcast_ref::<StringArray>()?;
    let wanted: Vec<&[u8]> = items
        .iter()
        .map(|i| match i {
            Literal::Str(s) => Some(s.as_bytes()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let offsets = strings.value_offsets();
    let data = strings.value_data();
    let short = wanted.iter().all(|w| w.len() <= 8);
    let hits = if short && wanted.len() <= 2 {
        short_items_in::<2>(offsets, data, &wanted, negated)
    } else if short && wanted.len() <= 4 {
        short_items_in::<4>(offsets, data, &wanted, negated)
    } else if short && wanted.len() <= 16 {
        short_items_in::<16>(offsets, data, &wanted, negated)
    } else {
        BooleanBuffer::collect_bool(strings.len(), |i| {
            let value = &data[offsets[i] as usize..offsets[i + 1] as usize];
            wanted.contains(&value) != negated
        })
    };
    Some(BooleanArray::new(hits, strings.nulls().cloned()))
}

/// `value in (items)` for at most `N` items of at most 8 bytes.
///
/// The items are a fixed array (unused slots match no length), so the
/// compiler unrolls the comparisons: no loop per row, nothing to
/// mispredict. Rows are read through `windows(2)` over the offsets and
/// packed 64 to a word, so no bounds check is left in the hot loop; that
/// matters most in the sandbox, whose compiler keeps fewer values in
/// registers than a native one: kept out of line, so that it does not
/// share registers with its caller.
#[inline(never)]
fn short_items_in<const N: usize>(
    offsets: &[i32],
    data: &[u8],
    wanted: &[&[u8]],
    negated: bool,
) -> BooleanBuffer {
    let mut needles = [(u64::MAX, 0u64); N];
    for (slot, w) in needles.iter_mut().zip(wanted) {
        *slot = (w.len() as u64, word(w));
    }
    let hit = |pair: &[i32]| {
        let (start, end) = (pair[0] as usize, pair[1] as usize);
        let len = end.wrapping_sub(start) as u64;
        // Bytes past the value are masked off; a value longer than 8 bytes
        // matches no item by its length alone.
        let v = match data.get(start..start + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => word(&data[start..end.min(start + 8)]),
        } & mask(len as usize);
        let mut found = false;
        for &(n, w) in &needles {
            found |= (len == n) & (v == w);
        }
        found != negated
    };
    let rows = offsets.len().saturating_sub(1);
    let mut words = Vec::with_capacity(rows.div_ceil(64));
    let mut pairs = offsets.windows(2);
    for _ in 0..rows / 64 {
        let mut bits = 0u64;
        for (bit, pair) in pairs.by_ref().take(64).enumerate() {
            bits |= u64::from(hit(pair)) << bit;
        }
        words.push(bits);
    }
    if !rows.is_multiple_of(64) {
        let mut bits = 0u64;
        for (bit, pair) in pairs.enumerate() {
            bits |= u64::from(hit(pair)) << bit;
        }
        words.push(bits);
    }
    BooleanBuffer::new(arrow_buffer::Buffer::from_vec(words), 0, rows)
}

/// Up to 8 bytes as a little-endian word, zero-padded.
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = bytes.len().min(8);
    w[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(w)
}

/// The low `len` bytes of a word (all of it from 8 on).
fn mask(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    }
}

/// Evaluate a predicate over a batch: one boolean per row.
///
/// # Errors
/// Unknown columns, types that cannot be compared, non-boolean predicates.
pub fn evaluate(e: &Expr, batch: &RecordBatch) -> Result<BooleanArray, String> {
    boolean(eval(e, batch)?, batch.num_rows(), "`where`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("amount", DataType::Int64, true),
            Field::new("country", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(5), Some(-1), None, Some(10)])),
                Arc::new(StringArray::from(vec![
                    Some("JP"),
                    Some("JP"),
                    Some("US"),
                    None,
                ])),
                Arc::new(Float64Array::from(vec![1.5, 2.5, 3.5, 4.5])),
            ],
        )
        .unwrap()
    }

    fn rows(src: &str) -> Vec<Option<bool>> {
        evaluate(&parse(src).unwrap(), &batch())
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(
            rows("amount > 0 and country = 'JP'"),
            [Some(true), Some(false), Some(false), None]
        );
        assert_eq!(
            rows("amount > 0 or country = 'US'"),
            [Some(true), Some(false), Some(true), Some(true)]
        );
        assert_eq!(
            rows("not amount <= 0"),
            [Some(true), Some(false), None, Some(true)]
        );
        assert_eq!(
            rows("amount is null"),
            [Some(false), Some(false), Some(true), Some(false)]
        );
        assert_eq!(
            rows("country in ('US', 'FR') or score >= 4"),
            [Some(false), Some(false), Some(true), Some(true)]
        );
        assert_eq!(
            rows("amount > 2.5"),
            [Some(true), Some(false), None, Some(true)]
        );
        assert_eq!(
            rows("(amount = 5)"),
            [Some(true), Some(false), None, Some(false)]
        );
    }

    #[test]
    fn string_in_matches_item_by_item_equality() {
        // Short and long values, prefixes of items, the empty string, a
        // value of exactly 8 bytes and values at the very end of the data
        // buffer; then the same over a slice (offsets not from zero).
        let pool = [
            "",
            "a",
            "al",
            "alpha",
            "alphabet",
            "alphabets",
            "bravo",
            "brav",
            "zz",
            "charlie",
        ];
        let mut x = 7u64;
        let values: Vec<Option<&str>> = (0..500)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pick = (x >> 33) as usize % (pool.len() + 1);
                pool.get(pick).copied()
            })
            .collect();
        let full = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(values.clone())) as ArrayRef,
        )])
        .unwrap();
        for batch in [full.clone(), full.slice(3, 400)] {
            for list in [
                vec!["alpha", "bravo"],
                vec!["", "alphabet"],
                vec!["al", "zz", "charlie"],
                vec!["alphabets", "a"],
                vec!["a", "al", "alpha", "bravo", "zz", "charlie"],
            ] {
                let src = format!(
                    "s in ({})",
                    list.iter()
                        .map(|v| format!("'{v}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let got = evaluate(&parse(&src).unwrap(), &batch).unwrap();
                let column = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                let want: Vec<Option<bool>> = column
                    .iter()
                    .map(|v| v.map(|v| list.contains(&v)))
                    .collect();
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{src}");
            }
        }
    }

    #[test]
    fn string_in_keeps_sql_nulls_and_long_values() {
        // country: JP, JP, US, NULL
        assert_eq!(
            rows("country in ('US', 'a-much-longer-value')"),
            [Some(false), Some(false), Some(true), None]
        );
        assert_eq!(
            rows("country not in ('US')"),
            [Some(true), Some(true), Some(false), None]
        );
        assert_eq!(
            rows("country in ('J')"),
            [Some(false), Some(false), Some(false), None]
        );
        // Values longer than a word compare byte by byte.
        let long = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(vec!["exactly-nine", "exactly-nin", "x"])) as ArrayRef,
        )])
        .unwrap();
        let hit = evaluate(&parse("s in ('exactly-nine')").unwrap(), &long).unwrap();
        assert_eq!(
            hit.iter().collect::<Vec<_>>(),
            [Some(true), Some(false), Some(false)]
        );
    }

    #[test]
    fn errors_are_clear() {
        let e = evaluate(&parse("amunt > 0").unwrap(), &batch()).unwrap_err();
        assert!(e.contains("unknown column `amunt`"), "{e}");
        assert!(parse("amount >").unwrap_err().contains("ends early"));
        assert!(parse("amount > 0 and").is_err());
        assert!(parse("'open").unwrap_err().contains("unterminated"));
        let e = evaluate(&parse("amount").unwrap(), &batch()).unwrap_err();
        assert!(e.contains("true/false"), "{e}");
        let e = evaluate(&parse("amount = 'abc'").unwrap(), &batch()).unwrap_err();
        assert!(e.contains("cannot compare"), "{e}");
    }
}
