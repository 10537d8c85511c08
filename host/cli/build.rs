//! Embeds the contract's WIT and the Python SDK in the `sluice` binary, so
//! `sluice plugin build` works with nothing but the binary (see
//! `src/plugin/embedded.rs`). Every file under the two trees is listed, so
//! a new one cannot be forgotten.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let mut out = String::new();
    for (name, dir, keep) in [
        ("WIT", root.join("wit"), &["wit", "md"][..]),
        (
            "PYTHON_SDK",
            root.join("sdk/python"),
            &["py", "typed", "toml", "md"][..],
        ),
    ] {
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        walk(&dir, &dir, keep, &mut files);
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

fn walk(base: &Path, dir: &Path, keep: &[&str], out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name == "__pycache__"
            || name.ends_with(".egg-info")
            || name == "build"
        {
            continue;
        }
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(base, &path, keep, out);
        } else if keep.iter().any(|ext| name.ends_with(&format!(".{ext}"))) {
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::canonicalize(&path).unwrap()));
        }
    }
}
