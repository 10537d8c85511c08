DROP TABLE staged_objects;
DROP INDEX runs_task;
ALTER TABLE runs DROP COLUMN task_id;
DELETE FROM stream_state a USING stream_state b
    WHERE a.job = b.job AND a.stream = b.stream AND a.partition = b.partition
      AND (a.updated_at, a.fingerprint) < (b.updated_at, b.fingerprint);
ALTER TABLE stream_state DROP CONSTRAINT stream_state_pkey;
ALTER TABLE stream_state DROP COLUMN fingerprint;
ALTER TABLE stream_state ADD PRIMARY KEY (job, stream, partition);
