"""State: the workspace database (one owner of the connection) and the run lock."""
