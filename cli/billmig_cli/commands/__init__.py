"""The `billmig` command groups, one module each."""
