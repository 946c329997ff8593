"""Every notification kind renders its default wording (subject, text, HTML, SMS) from its sample
context, in the sandbox with strict undefined, and an SMS stays one short text."""

from __future__ import annotations

import pytest

import spotless.domain.messaging.notifications.actors  # noqa: F401  (declares the kinds)
from spotless.domain.messaging.public import KINDS
from spotless.domain.messaging.rendering import MAX_SMS_CHARS, SAMPLE_ORG, render

OURS = sorted(name for name, kind in KINDS.items() if kind.template_dir.parts[-2:] == ("notifications", "templates"))


def test_the_kinds_of_issue_13_are_declared() -> None:
    assert set(OURS) == {
        "booking.confirmed",
        "booking.rescheduled",
        "booking.cancelled",
        "booking.reminder",
        "booking.on_my_way",
        "cleaner.agenda",
        "cleaner.job_changed",
        "invoice.issued",
        "payment.receipt",
        "payment.followup",
        "office.followup_step",
        "office.dispute_opened",
        "office.webhook_endpoint_disabled",
        "office.integration_needs_reconnect",
        "office.dead_letters",
        "notifications.digest",
    }
    assert not KINDS["notifications.digest"].transactional
    assert KINDS["invoice.issued"].attachments is not None


@pytest.mark.parametrize("name", OURS)
def test_each_kind_renders_its_sample(name: str) -> None:
    kind = KINDS[name]
    rendered = render(kind, kind.sample_context(), org=SAMPLE_ORG, unsubscribe_url=None)
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.strip() and rendered.html
    assert SAMPLE_ORG["name"] in rendered.text  # the shared layout signs it
    if "sms" in kind.channels:
        assert rendered.sms and len(rendered.sms) <= MAX_SMS_CHARS
    else:
        assert rendered.sms is None


def test_html_is_escaped() -> None:
    kind = KINDS["booking.confirmed"]
    context = {**kind.sample_context(), "client_name": "<script>x</script>"}
    rendered = render(kind, context, org=SAMPLE_ORG, unsubscribe_url=None)
    assert "<script>" not in (rendered.html or "") and "&lt;script&gt;" in (rendered.html or "")
