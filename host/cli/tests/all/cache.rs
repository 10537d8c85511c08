//! Compiled components are cached: the second run compiles nothing.

use crate::support::*;

#[test]
fn second_run_loads_precompiled_components() {
    let s = Scratch::new().with_private_cache();
    s.write(
        "j.yaml",
        "source:\n  plugin: generate\n  config: {rows: 10}\nfilters:\n  - plugin: select\n    config: {}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: x.csv}\n",
    );
    let first = s.run_ok("j.yaml", &[]);
    let second = s.run_ok("j.yaml", &[]);
    let cached = |summary: &serde_json::Value| -> Vec<bool> {
        summary["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["from_cache"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(cached(&first), [false, false, false]);
    assert_eq!(cached(&second), [true, true, true]);
    let entries = std::fs::read_dir(s.path("cache")).unwrap().count();
    assert_eq!(entries, 3, "one precompiled file per plugin");
}
