//! `${name}` templating over JSON values.
//!
//! `${env:…}` and `${secret:…}` are left as they are: the job loader and
//! the worker resolve them where the values are allowed to exist.

use std::collections::BTreeMap;

use serde_json::Value;

/// Variables by name; values are JSON (strings, numbers, lists…).
pub type Params = BTreeMap<String, Value>;

/// The text of a value as it goes into a string.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Replace `${name}` in `text`. A text that is exactly one placeholder
/// takes the variable's JSON type (a list stays a list).
///
/// # Errors
/// The first unknown variable's name.
pub fn render(text: &str, params: &Params) -> Result<Value, String> {
    let trimmed = text.trim();
    if let Some(name) = trimmed
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|n| !n.contains('}') && !n.contains("${") && !n.contains(':'))
    {
        return params
            .get(name.trim())
            .cloned()
            .ok_or_else(|| name.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = after[..end].trim();
        if name.contains(':') {
            // ${env:…} / ${secret:…}: resolved later, elsewhere.
            out.push_str(&rest[start..start + 2 + end + 1]);
        } else {
            let value = params.get(name).ok_or_else(|| name.to_string())?;
            out.push_str(&as_text(value));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

/// Render every string inside `value`; `at` names where an error is.
pub fn render_value(value: &Value, params: &Params, at: &str) -> Result<Value, (String, String)> {
    Ok(match value {
        Value::String(s) => render(s, params).map_err(|name| (at.to_string(), name))?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render_value(v, params, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = render_value(v, params, &format!("{at}.{k}"))?;
                    Ok::<_, (String, String)>((k.clone(), v))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// Whether a rendered `if:` holds: `true`/`false`, a number, a non-empty
/// string, or `a == b` / `a != b`.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            if let Some((a, b)) = s.split_once("!=") {
                return unquote(a) != unquote(b);
            }
            if let Some((a, b)) = s.split_once("==") {
                return unquote(a) == unquote(b);
            }
            !matches!(
                s.to_ascii_lowercase().as_str(),
                "" | "false" | "0" | "no" | "off"
            )
        }
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> Params {
        let mut p = Params::new();
        p.insert("date".into(), json!("2026-12-01"));
        p.insert("n".into(), json!(3));
        p.insert("regions".into(), json!(["jp", "us"]));
        p
    }

    #[test]
    fn renders_strings_and_keeps_types() {
        let p = params();
        assert_eq!(
            render("d=${date}/${n}", &p).unwrap(),
            json!("d=2026-12-01/3")
        );
        assert_eq!(render("${regions}", &p).unwrap(), json!(["jp", "us"]));
        assert_eq!(render("${ n }", &p).unwrap(), json!(3));
        assert_eq!(
            render("k ${env:HOME} ${secret:tok}", &p).unwrap(),
            json!("k ${env:HOME} ${secret:tok}")
        );
        assert_eq!(render("x ${nope}", &p).unwrap_err(), "nope");
        let v = render_value(&json!({"a": ["${n}", "${bad}"]}), &p, "cfg").unwrap_err();
        assert_eq!(v, ("cfg.a[1]".to_string(), "bad".to_string()));
    }

    #[test]
    fn conditions() {
        assert!(truthy(&json!("true")));
        assert!(!truthy(&json!("false")));
        assert!(!truthy(&json!("")));
        assert!(truthy(&json!("jp == 'jp'")));
        assert!(!truthy(&json!("jp != jp")));
        assert!(truthy(&json!(1)));
    }
}
