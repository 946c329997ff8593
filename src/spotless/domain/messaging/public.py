"""What other contexts may use of messaging: the email they want sent, and the job that sends it."""

from spotless.domain.messaging.actors import send_email
from spotless.domain.messaging.services import OutgoingEmail, deliver

__all__ = ["OutgoingEmail", "deliver", "send_email"]
