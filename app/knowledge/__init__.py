"""The support knowledge base: Dapr troubleshooting articles, their loader and BM25 search."""
