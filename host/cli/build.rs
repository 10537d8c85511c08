//! Embeds what `sluice plugin build` needs in the `sluice` binary, so it
//! works with nothing but the binary (see `src/plugin/embedded.rs`):
//!
//! - `WIT`: one tree componentize-py reads: the SDK worlds (`sdk/wit/`) at
//!   its root, WASI under `deps/`, and the contract they include (the
//!   root of `wit/`, 0.2.0) under `deps/sluice-plugin@0.2.0/`;
//! - `PYTHON_SDK`: `sdk/python/`;
//! - `JS_SDK`: `sdk/js/` (its sources, types and build scripts).
//!
//! Every file of those trees is listed, so a new one cannot be forgotten.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One tree to embed: files under `dir` ending in one of `keep`, named by
/// their path under `dir` after `prefix`; into subdirectories when `deep`.
struct Tree {
    dir: PathBuf,
    prefix: &'static str,
    keep: &'static [&'static str],
    deep: bool,
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let mut out = String::new();
    let sets = [
        (
            "WIT",
            vec![
                Tree {
                    dir: root.join("sdk/wit"),
                    prefix: "",
                    keep: &["wit", "md"],
                    deep: true,
                },
                Tree {
                    dir: root.join("wit"),
                    prefix: "deps/sluice-plugin@0.2.0/",
                    keep: &["wit"],
                    deep: false,
                },
            ],
        ),
        (
            "PYTHON_SDK",
            vec![Tree {
                dir: root.join("sdk/python"),
                prefix: "",
                keep: &["py", "typed", "toml", "md"],
                deep: true,
            }],
        ),
        (
            "JS_SDK",
            vec![Tree {
                dir: root.join("sdk/js"),
                prefix: "",
                keep: &["js", "mjs", "ts", "json", "md"],
                deep: true,
            }],
        ),
    ];
    for (name, trees) in sets {
        let mut files = Vec::new();
        for tree in trees {
            println!("cargo:rerun-if-changed={}", tree.dir.display());
            let mut found = Vec::new();
            walk(&tree.dir, &tree.dir, &tree, &mut found);
            files.extend(
                found
                    .into_iter()
                    .map(|(rel, abs)| (format!("{}{rel}", tree.prefix), abs)),
            );
        }
        files.sort();
        writeln!(out, "pub(crate) static {name}: &[(&str, &str)] = &[").unwrap();
        for (rel, abs) in files {
            writeln!(
                out,
                "    ({rel:?}, include_str!({:?})),",
                abs.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(dest, out).unwrap();
}

fn walk(base: &Path, dir: &Path, tree: &Tree, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name == "__pycache__"
            || name.ends_with(".egg-info")
            || name == "build"
            || name == "node_modules"
            || name == "target"
        {
            continue;
        }
        if path.is_dir() {
            if tree.deep {
                println!("cargo:rerun-if-changed={}", path.display());
                walk(base, &path, tree, out);
            }
        } else if tree
            .keep
            .iter()
            .any(|ext| name.ends_with(&format!(".{ext}")))
        {
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::canonicalize(&path).unwrap()));
        }
    }
}
