"""Data: normalising answers, tables, files written atomically, safe file names."""
