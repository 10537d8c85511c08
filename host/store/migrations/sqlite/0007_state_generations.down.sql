ALTER TABLE stream_state DROP COLUMN generation;
