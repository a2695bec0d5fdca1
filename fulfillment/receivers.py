"""Event handlers of the fulfillment step (thin: event → service call or task)."""
