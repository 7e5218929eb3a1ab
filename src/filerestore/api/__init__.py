"""The REST API: a thin FastAPI adapter over :mod:`filerestore.restore` (see app.py)."""
