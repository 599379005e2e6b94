"""One module per command group of `billmig`."""
