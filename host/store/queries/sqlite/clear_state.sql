DELETE FROM stream_state WHERE job = ?
