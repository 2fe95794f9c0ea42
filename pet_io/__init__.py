"""Data files: reading and checking the splits (``reader``), streaming tables (``table_stream``),
normalised copies of examples (``example_files``), atomic writers (``atomic``) and digests.

Imports the core's example record only; no Prefect, no MLflow.
"""
