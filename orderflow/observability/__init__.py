"""What an operator sees of the running processes: traces (tracing.py)."""
