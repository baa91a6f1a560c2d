"""Click commands, one module per area; ``runner.cli`` imports each only when it is used."""
