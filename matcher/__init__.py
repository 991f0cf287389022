"""Retrieval, ranking, eligibility rules and assignment. Pure numpy/scipy: no service, no database, no env reads."""
