DROP TABLE metric_totals;
