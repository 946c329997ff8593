"""The money context's HTTP controllers."""
