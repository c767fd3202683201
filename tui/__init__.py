"""`mpls tui`: a Textual dashboard of a run, read from Redis telemetry or a run directory."""
