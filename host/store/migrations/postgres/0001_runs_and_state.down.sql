DROP TABLE stream_state;
DROP INDEX runs_job;
DROP TABLE runs;
