INSERT INTO stream_state (job, stream, partition, state, run_id) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (job, stream, partition) DO UPDATE SET
    state = excluded.state, run_id = excluded.run_id,
    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
