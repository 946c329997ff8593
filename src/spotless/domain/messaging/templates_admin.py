"""An organisation's wording of each kind: read, validated and saved, removed, previewed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.messaging.delivery import org_profile
from spotless.domain.messaging.kinds import KINDS, MessageKind, UnknownKind, get_kind
from spotless.domain.messaging.models import TemplateOverride
from spotless.domain.messaging.rendering import Part, RenderError, default_source, render, validate_override
from spotless.domain.messaging.schemas import (
    KindRead,
    PreviewRead,
    TemplateParts,
    TemplateRead,
    TemplateUpdate,
)
from spotless.lib.errors import Problem, not_found

_FIELD = {"subject": "subject", "text": "text", "html": "html", "sms": "sms"}


def known_kind(name: str) -> MessageKind:
    try:
        return get_kind(name)
    except UnknownKind:
        raise not_found("message kind") from None


def _parts(row: TemplateOverride) -> TemplateParts:
    return TemplateParts(subject=row.subject, text=row.text_body, html=row.html_body, sms=row.sms_body)


def _as_overrides(parts: TemplateParts | TemplateUpdate) -> dict[Part, str | None]:
    return {"subject": parts.subject, "text": parts.text, "html": parts.html, "sms": parts.sms}


async def _override(session: AsyncSession, kind: str) -> TemplateOverride | None:
    return await session.scalar(select(TemplateOverride).where(TemplateOverride.kind == kind))


async def list_kinds(session: AsyncSession) -> list[KindRead]:
    overridden = set((await session.scalars(select(TemplateOverride.kind))).all())
    return [
        KindRead(
            name=k.name,
            audience=k.audience,
            transactional=k.transactional,
            channels=list(k.channels),
            overridden=k.name in overridden,
        )
        for k in sorted(KINDS.values(), key=lambda k: k.name)
    ]


async def read_template(session: AsyncSession, name: str) -> TemplateRead:
    kind = known_kind(name)
    row = await _override(session, kind.name)
    defaults = TemplateParts(
        subject=default_source(kind, "subject"),
        text=default_source(kind, "text"),
        html=default_source(kind, "html"),
        sms=default_source(kind, "sms"),
    )
    variables = sorted({*kind.sample_context(), "org", "recipient", "unsubscribe_url"})
    return TemplateRead(kind=kind.name, defaults=defaults, override=_parts(row) if row else None, variables=variables)


async def save_template(session: AsyncSession, org_id: uuid.UUID, name: str, data: TemplateUpdate) -> TemplateRead:
    kind = known_kind(name)
    errors = validate_override(kind, _as_overrides(data))
    if errors:
        raise Problem(
            422,
            "invalid-template",
            "The template cannot be used",
            "; ".join(f"{part}: {message}" for part, message in errors.items()),
            errors=[{"field": _FIELD.get(p, p), "message": m, "code": "invalid_template"} for p, m in errors.items()],
        )
    now = datetime.now(UTC)
    values = {"subject": data.subject, "text_body": data.text, "html_body": data.html, "sms_body": data.sms}
    await session.execute(
        pg_insert(TemplateOverride)
        .values(id=uuid7(), org_id=org_id, kind=kind.name, created_at=now, updated_at=now, **values)
        .on_conflict_do_update(constraint="uq_message_templates_kind", set_={**values, "updated_at": now})
    )
    return await read_template(session, kind.name)


async def delete_template(session: AsyncSession, name: str) -> None:
    kind = known_kind(name)
    await session.execute(delete(TemplateOverride).where(TemplateOverride.kind == kind.name))


async def preview(session: AsyncSession, org_id: uuid.UUID, name: str) -> PreviewRead:
    """The kind rendered for its sample context, with this organisation's wording and layout."""
    kind = known_kind(name)
    row = await _override(session, kind.name)
    profile = await org_profile(session, org_id)
    sample = {"recipient": {"name": "Ada Client"}, **kind.sample_context()}
    unsubscribe = None if kind.transactional else "https://example.invalid/v1/messaging/unsubscribe/preview"
    try:
        rendered = render(
            kind, sample, _as_overrides(_parts(row)) if row else None, org=profile.layout(), unsubscribe_url=unsubscribe
        )
    except RenderError as exc:
        # A default template (ours) that fails is a bug; an override was validated when saved.
        raise Problem(
            422,
            "invalid-template",
            "The template cannot be used",
            str(exc),
            errors=[{"field": p, "message": m, "code": "invalid_template"} for p, m in exc.errors.items()],
        ) from None
    return PreviewRead(
        kind=kind.name,
        overridden=row is not None,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        sms=rendered.sms if "sms" in kind.channels else None,
    )
