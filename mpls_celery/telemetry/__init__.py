"""The records both engines emit (one per worker iteration, one per evaluation), their JSON form,
and the run directory (manifest.json, metrics.jsonl, summary.json) that reports and the TUI read."""
