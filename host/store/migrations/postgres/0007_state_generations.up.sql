-- Every save of a partition's state moves its generation on by one; a new
-- row starts at a random one. A sink's commit is named by the generation
-- it starts from, so the same commit made again after a crash has the same
-- name (a BigQuery load job id it cannot make twice), and no other commit
-- shares it, not even after the state is cleared.
ALTER TABLE stream_state ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
