"""FastAPI app, staff pages, store and CLI: the only package importing both matcher and embeddings."""
