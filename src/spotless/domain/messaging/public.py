"""What other contexts may use of messaging.

- `register_kind(MessageKind(...))` at import of the module declaring a kind;
- `request_message(session, org_id=..., kind=..., recipient=Recipient(...), subject_type=...,
  subject_id=..., send_key=..., params=...)` in the caller's transaction (True: newly requested);
- `office_recipients(session, org_id, permission)`: the members to tell;
- `Delivery` (table `deliveries`): the read model of what was requested and what became of it.
  The office's log per booking lists `subject_type="booking"` rows of that booking id; per client,
  rows whose recipient is that client. `request_message` channels: one row per channel of the
  kind; the recipient's preference picks which one goes (the others end `skipped`);
- a kind whose message carries a secret (a reset link, an invitation token) declares a `secrets`
  hook: the delivery job calls it at send time, in its transaction, on every attempt; only the
  sent message holds what it returns (nothing stored does: ids in `params`, a redacted summary)."""

from spotless.domain.messaging.actors import deliver_message
from spotless.domain.messaging.kinds import KINDS, MessageKind, Recipient, UnknownKind, get_kind, register_kind
from spotless.domain.messaging.models import DELIVERY_STATUSES, Delivery
from spotless.domain.messaging.requests import office_recipients, request_message

__all__ = [
    "DELIVERY_STATUSES",
    "KINDS",
    "Delivery",
    "MessageKind",
    "Recipient",
    "UnknownKind",
    "deliver_message",
    "get_kind",
    "office_recipients",
    "register_kind",
    "request_message",
]
