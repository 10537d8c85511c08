//! A source built against `sluice:plugin@1.0.0`, which this host does not
//! serve: loading it must fail with both versions named.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

struct Future;

impl exports::sluice::plugin::source::Guest for Future {
    fn info() -> String {
        "future".into()
    }
}

export!(Future);
