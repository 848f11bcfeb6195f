"""The operators' terminal command, `python -m app.ops` (see __main__.py)."""
