"""APIs of the internal services."""
