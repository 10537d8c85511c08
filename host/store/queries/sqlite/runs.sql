SELECT id, job, started_at, finished_at, status, rows, bytes, error FROM runs
WHERE (?1 IS NULL OR job = ?1) ORDER BY id DESC LIMIT ?2
