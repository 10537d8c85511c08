UPDATE runs SET status = ?, rows = ?, bytes = ?, error = ?,
    finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE id = ?
