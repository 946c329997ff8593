"""What other contexts may use of audit: recording an entry in their own transaction (an audit
row is part of the change it describes, so it is written with it, not by an event afterwards)."""

from spotless.domain.audit.services import changes, record_audit, reset_client_ip, set_client_ip

__all__ = ["changes", "record_audit", "reset_client_ip", "set_client_ip"]
