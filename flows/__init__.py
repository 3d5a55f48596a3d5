"""Prefect flows: thin sequences of der library calls (the library never imports Prefect)."""
