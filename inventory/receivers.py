"""Event handlers of the inventory step (thin: event → service call or task)."""
