-- Counters and histogram buckets the fleet's workers add to: tasks started,
-- succeeded and failed, rows and bytes each plugin moved, how long plugin
-- calls took. They live apart from the task rows so retention does not
-- take them away (a Prometheus counter never goes down). One row per
-- sample: its full name (`sluice_plugin_call_seconds_bucket`) and its
-- labels as Prometheus text (`plugin="file",call="reader.next",le="0.01"`).

CREATE TABLE metric_totals (
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (name, labels)
);
