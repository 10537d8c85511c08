//! Failpoints: panics on purpose, for the tests that prove a panic in the
//! host fails a task cleanly.
//!
//! `SLUICE_FAILPOINTS=batch.from-json-lines,pipeline.writer@3` makes each
//! named point panic when reached (`@N`: the Nth time it is reached, in
//! the whole process). The names are host functions (as
//! [`crate::capability`] guards them: `codec.encoder.write`, …) and the
//! pipeline's own points. Read once; unset (always, outside tests), a point
//! costs one load of an empty list.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the points that panic.
pub const FAILPOINTS_VAR: &str = "SLUICE_FAILPOINTS";

struct Point {
    name: String,
    /// Panic on this hit (1 = the first).
    at: u64,
    hits: AtomicU64,
}

fn points() -> &'static [Point] {
    static POINTS: OnceLock<Vec<Point>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var(FAILPOINTS_VAR)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (name, at) = match p.split_once('@') {
                            Some((name, at)) => (name, at.parse().unwrap_or(1)),
                            None => (p, 1),
                        };
                        Point {
                            name: name.to_string(),
                            at,
                            hits: AtomicU64::new(0),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Panic here if `name` is one of the points set, on its turn.
pub fn hit(name: &str) {
    let points = points();
    if points.is_empty() {
        return;
    }
    for point in points.iter().filter(|p| p.name == name) {
        if point.hits.fetch_add(1, Ordering::Relaxed) + 1 == point.at {
            panic!("failpoint {name} reached ({FAILPOINTS_VAR})");
        }
    }
}
