"""The console process: health check and the JSON API (spec §5) for the utility's systems."""
