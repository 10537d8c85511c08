SELECT partition, state FROM stream_state WHERE job = ? AND stream = ?
