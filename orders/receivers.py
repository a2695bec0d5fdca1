"""Event handlers of the orders step (thin: event → service call or task)."""
