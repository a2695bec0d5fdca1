"""Event handlers of the dashboard step (thin: event → service call or task)."""
