"""Reports of a run: plots (matplotlib PNG) and an HTML summary."""
