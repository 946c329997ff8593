"""The money context's HTTP routes."""
