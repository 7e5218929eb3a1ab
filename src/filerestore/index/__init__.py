"""The file index: every entry of every backup, searchable, with histories and diffs."""
