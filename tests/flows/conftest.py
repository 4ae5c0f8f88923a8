"""Flow tests use `prefect_harness` (tests/conftest.py): a real temporary Prefect server."""
