"""Models of the fulfillment app."""
