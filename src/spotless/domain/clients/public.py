"""What other contexts may use of clients: who can be booked where, and their addresses."""

from spotless.domain.clients.services import (
    addresses_by_client,
    client_archived_at,
    client_contact,
    get_bookable_client,
)

__all__ = ["addresses_by_client", "client_archived_at", "client_contact", "get_bookable_client"]
