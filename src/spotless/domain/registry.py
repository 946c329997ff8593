"""The one list of bounded contexts: their controllers, models (for alembic) and jobs (for workers).
Adding a domain means adding it here."""

from __future__ import annotations

from typing import Any


def controllers() -> list[Any]:
    from spotless.domain.audit.controllers import AuditController
    from spotless.domain.billing.controllers import BillingSettingsController, InvoiceController
    from spotless.domain.billing.controllers.documents import InvoiceDocumentController
    from spotless.domain.billing.controllers.followup import FollowupController
    from spotless.domain.billing.controllers.public import PayLinkController
    from spotless.domain.billing.controllers.refunds import DisputeController, InvoiceRefundsController
    from spotless.domain.billing.controllers.stripe import (
        ClientCardController,
        InvoiceCheckoutController,
        StripeAccountController,
    )
    from spotless.domain.billing.controllers.webhooks import StripeWebhookController
    from spotless.domain.catalog.controllers import AddonController, PricingController, ServiceController
    from spotless.domain.clients.controllers import ClientController
    from spotless.domain.evidence.controllers import (
        BookingEvidenceController,
        ChecklistTemplateController,
        WorkerJobEvidenceController,
    )
    from spotless.domain.exports.controllers import DeadLetterController, ExportController, TaxExportController
    from spotless.domain.identity.controllers import (
        AuthController,
        IamUsersController,
        InvitationsController,
        MyInvitationsController,
        OrganizationController,
    )
    from spotless.domain.integrations.controllers import IntegrationsController
    from spotless.domain.integrations.google.controllers import GoogleCalendarController
    from spotless.domain.integrations.quickbooks.controllers import QuickBooksController
    from spotless.domain.messaging.controllers import (
        BookingMessagesController,
        ClientMessagingController,
        MessagingController,
        SendgridEventsController,
        TwilioInboundController,
        TwilioStatusController,
        UnsubscribeController,
        WorkerMessagingController,
    )
    from spotless.domain.messaging.notifications.controllers import NotificationSettingsController
    from spotless.domain.retention.controllers import ClientErasureController, RetentionController
    from spotless.domain.scheduling.controllers import (
        AvailabilityController,
        BookingController,
        SchedulingSettingsController,
        SeriesController,
        WorkerJobsController,
    )
    from spotless.domain.system.controllers import HealthController, MetricsController, StatusController
    from spotless.domain.webhooks.controllers import WebhooksController
    from spotless.domain.workforce.controllers import TeamController, WorkerController
    from spotless.lib.storage.controller import StorageDownloadController

    return [
        HealthController,
        MetricsController,
        StatusController,
        AuthController,
        OrganizationController,
        IamUsersController,
        InvitationsController,
        MyInvitationsController,
        AuditController,
        ClientController,
        WorkerController,
        TeamController,
        ServiceController,
        AddonController,
        PricingController,
        BookingController,
        AvailabilityController,
        SeriesController,
        WorkerJobsController,
        ChecklistTemplateController,
        BookingEvidenceController,
        WorkerJobEvidenceController,
        SchedulingSettingsController,
        BillingSettingsController,
        InvoiceController,
        InvoiceDocumentController,
        PayLinkController,
        StripeWebhookController,
        InvoiceRefundsController,
        DisputeController,
        StripeAccountController,
        InvoiceCheckoutController,
        ClientCardController,
        FollowupController,
        MessagingController,
        ClientMessagingController,
        WorkerMessagingController,
        BookingMessagesController,
        UnsubscribeController,
        TwilioInboundController,
        TwilioStatusController,
        SendgridEventsController,
        NotificationSettingsController,
        ExportController,
        TaxExportController,
        DeadLetterController,
        StorageDownloadController,
        WebhooksController,
        IntegrationsController,
        QuickBooksController,
        RetentionController,
        ClientErasureController,
        GoogleCalendarController,
    ]


def import_models() -> None:
    import spotless.domain.audit.models
    import spotless.domain.billing.models
    import spotless.domain.catalog.models
    import spotless.domain.clients.models
    import spotless.domain.evidence.models
    import spotless.domain.exports.models
    import spotless.domain.identity.models
    import spotless.domain.integrations.google.models
    import spotless.domain.integrations.models
    import spotless.domain.integrations.quickbooks.models
    import spotless.domain.messaging.models
    import spotless.domain.messaging.notifications.models
    import spotless.domain.retention.models
    import spotless.domain.scheduling.models
    import spotless.domain.system.models
    import spotless.domain.webhooks.models
    import spotless.domain.workforce.models
    import spotless.lib.idempotency
    import spotless.lib.inbox
    import spotless.lib.jobs.outbox  # noqa: F401


def import_jobs() -> None:
    import spotless.domain.billing.actors
    import spotless.domain.billing.charging
    import spotless.domain.billing.disputes
    import spotless.domain.billing.followup
    import spotless.domain.billing.recovery
    import spotless.domain.billing.stripe_events
    import spotless.domain.evidence.actors
    import spotless.domain.evidence.retention  # its purger (retention's register_purger)
    import spotless.domain.exports.actors
    import spotless.domain.identity.actors
    import spotless.domain.identity.messages  # its message kinds (a worker must know every kind)
    import spotless.domain.integrations.google.actors
    import spotless.domain.integrations.quickbooks.actors
    import spotless.domain.integrations.retention  # its purger (expired connect states)
    import spotless.domain.integrations.revocation
    import spotless.domain.messaging.actors
    import spotless.domain.messaging.notifications.actors
    import spotless.domain.messaging.retention  # its purger, bundle part and erasure scrub
    import spotless.domain.retention.jobs
    import spotless.domain.scheduling.actors
    import spotless.domain.system.actors
    import spotless.domain.webhooks.actors
    import spotless.lib.inbox  # noqa: F401  (system.process_inbox_event)
    from spotless.lib.events import mark_subscriptions_loaded

    mark_subscriptions_loaded()


def import_events() -> None:
    """Every context's events module (those nobody subscribes to yet included)."""
    import spotless.domain.billing.events
    import spotless.domain.clients.events
    import spotless.domain.integrations.events
    import spotless.domain.scheduling.events
    import spotless.domain.system.events
    import spotless.domain.webhooks.events  # noqa: F401


def event_subscribers() -> dict[str, list[str]]:
    """Who listens to what: event name -> subscriber job names (shown by a test, and the note)."""
    from spotless.lib.events import subscription_map

    import_jobs()
    import_events()
    return subscription_map()
