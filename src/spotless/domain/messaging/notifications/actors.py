"""Importing this declares every notification kind, its subscribers and periodic jobs."""

import spotless.domain.messaging.notifications.billing_messages
import spotless.domain.messaging.notifications.booking_messages
import spotless.domain.messaging.notifications.cleaner_agenda
import spotless.domain.messaging.notifications.digests
import spotless.domain.messaging.notifications.integration_notices
import spotless.domain.messaging.notifications.office
import spotless.domain.messaging.notifications.reminders
import spotless.domain.messaging.notifications.webhook_notices  # noqa: F401
