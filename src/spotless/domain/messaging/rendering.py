"""Rendering a kind's message: its default templates or the organisation's override, inside the
shared layout (organisation name, reply-to, logo, unsubscribe link).

Everything renders in Jinja2's immutable sandbox with StrictUndefined: an organisation's wording
is user input, so it must not reach Python internals (`__class__`, `__globals__`), mutate the
context, or silently print nothing for a misspelt variable. HTML is autoescaped; text and SMS are
not (they are not HTML)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from spotless.domain.messaging.kinds import MessageKind

LAYOUT_DIR = Path(__file__).parent / "templates"
Part = Literal["subject", "text", "html", "sms"]
PARTS: tuple[Part, ...] = ("subject", "text", "html", "sms")
SUFFIX: dict[Part, str] = {"subject": ".subject.txt", "text": ".txt", "html": ".html", "sms": ".sms.txt"}
# An SMS beyond this is several billed segments: overrides are refused past it.
MAX_SMS_CHARS = 640
SAMPLE_ORG = {"name": "Sparkle Cleaning Co.", "reply_to": "office@sparkle.example", "logo_url": None}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    sms: str | None


class RenderError(Exception):
    """An override (or a default template) that cannot render: `errors` maps part -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@functools.cache
def _environment(directory: Path | None, html: bool) -> ImmutableSandboxedEnvironment:
    search = [str(directory), str(LAYOUT_DIR)] if directory is not None else [str(LAYOUT_DIR)]
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(search),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def default_source(kind: MessageKind, part: Part) -> str | None:
    path = kind.template_dir / f"{kind.template}{SUFFIX[part]}"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _template(kind: MessageKind, part: Part, override: str | None) -> Template | None:
    env = _environment(kind.template_dir, part == "html")
    if override is not None:
        return env.from_string(override)
    if not (kind.template_dir / f"{kind.template}{SUFFIX[part]}").is_file():
        return None
    return env.get_template(f"{kind.template}{SUFFIX[part]}")


def _one_line(value: str) -> str:
    # A subject is a header: no line breaks (header injection), no runs of blanks.
    return " ".join(value.split())


def render(
    kind: MessageKind,
    context: Mapping[str, Any],
    overrides: Mapping[Part, str | None] | None = None,
    *,
    org: Mapping[str, Any],
    unsubscribe_url: str | None = None,
) -> Rendered:
    """Raises RenderError naming the part that failed."""
    overrides = overrides or {}
    values: dict[str, Any] = {**context, "org": dict(org), "unsubscribe_url": unsubscribe_url}
    out: dict[Part, str | None] = {}
    errors: dict[str, str] = {}
    for part in PARTS:
        try:
            template = _template(kind, part, overrides.get(part))
            out[part] = template.render(values) if template is not None else None
        except TemplateSyntaxError as exc:
            errors[part] = f"line {exc.lineno}: {exc.message}"
        except SecurityError as exc:
            errors[part] = f"not allowed: {exc}"
        except TemplateError as exc:
            errors[part] = str(exc.message or exc)
        except Exception as exc:  # a filter on a wrong type, a division by zero...
            errors[part] = f"{type(exc).__name__}: {exc}"
    if errors:
        raise RenderError(errors)
    subject = _one_line(out["subject"] or "")
    if not subject:
        raise RenderError({"subject": "renders empty"})
    text = (out["text"] or "").strip()
    layout_values = {**values, "subject": subject}
    text_env = _environment(None, False)
    html_env = _environment(None, True)
    full_text = text_env.get_template("layout.txt").render({**layout_values, "body": text}).strip() + "\n"
    html = out["html"]
    full_html = None
    if html is not None:
        # Rendered by the autoescaping environment above: already escaped, not to be escaped twice.
        body = Markup(html)  # noqa: S704
        full_html = html_env.get_template("layout.html").render({**layout_values, "body": body})
    sms = out["sms"]
    return Rendered(subject=subject, text=full_text, html=full_html, sms=" ".join(sms.split()) if sms else None)


def validate_override(kind: MessageKind, overrides: Mapping[Part, str | None]) -> dict[str, str]:
    """Field errors of an override against the kind's sample context ({} when it is fine)."""
    errors: dict[str, str] = {}
    if kind.secrets is not None:
        # A password reset or an invitation: only our wording carries the minted link.
        return {"subject": "this message carries a sign-in secret; its wording cannot be changed"}
    sms = overrides.get("sms")
    if sms is not None and "sms" not in kind.channels:
        errors["sms"] = "this kind is never sent by text"
    elif sms is not None and len(sms) > MAX_SMS_CHARS:
        errors["sms"] = f"at most {MAX_SMS_CHARS} characters"
    try:
        rendered = render(kind, kind.sample_context(), overrides, org=SAMPLE_ORG, unsubscribe_url=None)
    except RenderError as exc:
        return {**exc.errors, **errors}
    if rendered.sms is not None and len(rendered.sms) > MAX_SMS_CHARS and "sms" not in errors:
        errors["sms"] = f"renders to more than {MAX_SMS_CHARS} characters"
    return errors
