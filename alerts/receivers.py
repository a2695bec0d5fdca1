"""Event handlers of the alerts step (thin: event → service call or task)."""
