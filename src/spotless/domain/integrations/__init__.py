"""Integrations: OAuth connections to outside services (Google Calendar, QuickBooks), their sealed
tokens and sync cadence. Provider-specific sync lives in the provider's own sub-package."""
