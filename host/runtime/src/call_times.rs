//! How long calls into plugins take, per plugin and call, as histograms.
//!
//! This is the figure that tells a slow plugin from a slow database: a
//! worker drains it after each batch of tasks and adds it to the fleet's
//! `/metrics`. Recording is a short uncontended lock and no allocation once
//! a (plugin, call) pair has been seen, so it costs nothing beside a call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the histogram's buckets, in seconds; a last, unbounded
/// bucket (`+Inf`) follows. From a fast filter's batch (0.1 ms) to a
/// database commit that waits on locks (a minute).
pub const CALL_SECONDS_BUCKETS: [f64; 13] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0,
];

/// The calls of one plugin's one export since the last drain.
#[derive(Debug, Clone, PartialEq)]
pub struct CallHistogram {
    /// The plugin's name (from its `info()`).
    pub plugin: String,
    /// The call (`reader.next`, `writer.commit`, …).
    pub call: String,
    /// Calls per bucket, not cumulative: one entry per bound of
    /// [`CALL_SECONDS_BUCKETS`], then the `+Inf` bucket.
    pub buckets: Vec<u64>,
    /// Calls in all.
    pub count: u64,
    /// Seconds spent in them.
    pub sum_seconds: f64,
}

impl CallHistogram {
    fn new(plugin: &str, call: &str) -> CallHistogram {
        CallHistogram {
            plugin: plugin.to_string(),
            call: call.to_string(),
            buckets: vec![0; CALL_SECONDS_BUCKETS.len() + 1],
            count: 0,
            sum_seconds: 0.0,
        }
    }

    fn record(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = CALL_SECONDS_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(CALL_SECONDS_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

/// Call durations of every plugin a [`Runtime`](crate::Runtime) loaded.
#[derive(Debug, Default)]
pub struct CallTimes {
    by_plugin: Mutex<HashMap<String, HashMap<String, CallHistogram>>>,
}

impl CallTimes {
    /// Count one call of `plugin`'s `call` that took `took`.
    pub(crate) fn record(&self, plugin: &str, call: &str, took: Duration) {
        let mut by_plugin = self.by_plugin.lock().unwrap_or_else(|p| p.into_inner());
        if !by_plugin.contains_key(plugin) {
            by_plugin.insert(plugin.to_string(), HashMap::new());
        }
        let calls = by_plugin.get_mut(plugin).expect("inserted above");
        if !calls.contains_key(call) {
            calls.insert(call.to_string(), CallHistogram::new(plugin, call));
        }
        calls.get_mut(call).expect("inserted above").record(took);
    }

    /// Everything recorded since the last drain, sorted by plugin and call,
    /// and start again from zero: the caller owns these counts now.
    pub fn drain(&self) -> Vec<CallHistogram> {
        let taken = std::mem::take(&mut *self.by_plugin.lock().unwrap_or_else(|p| p.into_inner()));
        let mut all: Vec<CallHistogram> =
            taken.into_values().flat_map(|c| c.into_values()).collect();
        all.sort_by(|a, b| (&a.plugin, &a.call).cmp(&(&b.plugin, &b.call)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_in_the_bucket_of_their_duration_and_drain_empties() {
        let times = CallTimes::default();
        times.record("file", "reader.next", Duration::from_micros(50));
        times.record("file", "reader.next", Duration::from_millis(3));
        times.record("file", "reader.next", Duration::from_secs(120));
        times.record("select", "transformer.process", Duration::from_micros(100));
        let drained = times.drain();
        assert_eq!(drained.len(), 2);
        let read = &drained[0];
        assert_eq!(
            (read.plugin.as_str(), read.call.as_str()),
            ("file", "reader.next")
        );
        assert_eq!(read.count, 3);
        // 50 µs ≤ 0.1 ms; 3 ms ≤ 5 ms (the fourth bound); 120 s is past them all.
        assert_eq!(read.buckets[0], 1);
        assert_eq!(read.buckets[3], 1);
        assert_eq!(read.buckets[CALL_SECONDS_BUCKETS.len()], 1);
        assert_eq!(read.buckets.iter().sum::<u64>(), 3);
        assert!(
            (read.sum_seconds - 120.00305).abs() < 1e-9,
            "{}",
            read.sum_seconds
        );
        // A bound is inclusive, as Prometheus's `le` is.
        assert_eq!(drained[1].buckets[0], 1);
        assert!(times.drain().is_empty());
    }
}
