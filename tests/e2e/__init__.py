"""End-to-end tests: real worker processes, real signals, one SQLite file."""
