"""Text → vectors, and vectors → persisted FAISS/BM25 index builds. Imports nothing else of ours."""
