"""The expert step's offline parts: knowledge-base queries, rank fusion and proposal composition."""
