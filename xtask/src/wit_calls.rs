//! Every function of the contract must be called through the host by some
//! test. The test run sets `SLUICE_WIT_CALL_LOG`; each process (every
//! `sluice` the end-to-end tests start, and the test binaries) notes the
//! contract functions it called (`host/runtime/src/call_log.rs`), and this
//! compares them with the functions `wit/*.wit` declares. A function added
//! to the contract with no test calling it fails the run, named.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// `interface.resource.function` for every function in the `.wit` files
/// directly in `wit` (the current contract; `deps/` is left out: 0.1.0
/// is served by the same host functions).
pub fn declared(wit: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(wit)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wit"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let (mut interface, mut resource) = (None::<String>, None::<String>);
        let mut depth = 0usize;
        let mut resource_depth = 0usize;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("//") {
                continue;
            }
            let word = |prefix: &str| {
                line.strip_prefix(prefix).map(|rest| {
                    rest.trim_start_matches('%')
                        .split(|c: char| c.is_whitespace() || c == '{')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
            };
            if let Some(name) = word("interface ") {
                interface = Some(name);
            } else if let Some(name) = word("world ") {
                interface = None;
                let _ = name;
            } else if let Some(name) = word("resource ") {
                if line.ends_with('{') {
                    resource = Some(name);
                    resource_depth = depth + 1;
                }
            } else if let Some((name, rest)) = line.split_once(':') {
                let rest = rest.trim_start();
                if (rest.starts_with("func") || rest.starts_with("static func"))
                    && let Some(interface) = &interface
                {
                    let name = name.trim().trim_start_matches('%');
                    let owner = match &resource {
                        Some(r) => format!("{interface}.{r}"),
                        None => interface.clone(),
                    };
                    out.insert(format!("{owner}.{name}"));
                }
            }
            depth += line.matches('{').count();
            depth = depth.saturating_sub(line.matches('}').count());
            if resource.is_some() && depth < resource_depth {
                resource = None;
            }
        }
    }
    Ok(out)
}

/// What the processes of a test run called, from the logs in `dir`.
pub fn called(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let text = std::fs::read_to_string(entry?.path())?;
        out.extend(text.lines().map(str::to_string));
    }
    Ok(out)
}

/// Fail naming every declared function nothing called.
pub fn check(wit: &Path, dir: &Path) -> Result<()> {
    let declared = declared(wit)?;
    let called = called(dir)?;
    let missing: Vec<_> = declared.difference(&called).cloned().collect();
    eprintln!(
        "contract functions called through the host by the tests: {} of {}",
        declared.len() - missing.len(),
        declared.len()
    );
    if !missing.is_empty() {
        bail!(
            "no test called these contract functions through the host: {}",
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_is_read_function_by_function() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let all = declared(&wit).unwrap();
        for name in [
            "types.schema.from-fields",
            "types.batch.to-json-lines",
            "source.reader.next",
            "source.info",
            "sink.writer.commit",
            "filter.transformer.plan",
            "arrays.to-arrays",
            "log.log",
            "blob.list",
            "bigquery.rows.next",
            "sql.connection.open",
            "codec.decoder.rejected",
        ] {
            assert!(all.contains(name), "{name} not in {all:?}");
        }
        assert!(!all.iter().any(|n| n.contains("wasi")));
        assert!(all.len() > 70, "{}", all.len());
    }
}
