"""Event handlers of the payments step (thin: event → service call or task)."""
