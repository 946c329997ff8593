"""Optimistic concurrency on an invoice (RFC 9110 conditional requests): every answer that shows
an invoice carries `ETag: "<version>"` (the `version` the ledger, issuing and editing bump), and a
change sent with `If-Match` is made only if the invoice is still at that version, checked under
the invoice's row lock, so two editors working from the same copy cannot both win: the second
gets 412 /problems/precondition-failed with the current version, re-reads and decides again.
Without `If-Match` a change applies to whatever is current (last write wins), as before."""

from __future__ import annotations

import re
from typing import Annotated

from litestar.params import Parameter

from spotless.lib.errors import FieldError, Problem

IfMatch = Annotated[
    str | None,
    Parameter(
        header="If-Match",
        required=False,
        max_length=512,
        description='The invoice\'s ETag as last read (e.g. "4"): the change is refused with 412 if it changed since',
    ),
]

# A strong entity tag; a weak one (W/"4") never matches for If-Match (RFC 9110 13.1.1).
_TAG = re.compile(r'^(W/)?"([^"]*)"$')


def etag(version: int) -> str:
    return f'"{version}"'


def require_version(if_match: str | None, current: int, what: str = "invoice") -> None:
    """Raise 412 unless `If-Match` (when sent) names the current version; 400 when it is not a
    list of entity tags or `*`."""
    if if_match is None:
        return
    value = if_match.strip()
    if value == "*":
        return
    tags = [part.strip() for part in value.split(",") if part.strip()]
    if not tags:
        raise FieldError("If-Match", 'If-Match is an entity tag such as "4" (from the ETag header), or *')
    matched = False
    for tag in tags:
        found = _TAG.match(tag)
        if found is None:
            raise FieldError("If-Match", 'If-Match is an entity tag such as "4" (from the ETag header), or *')
        matched = matched or (found.group(1) is None and found.group(2) == str(current))
    if not matched:
        raise Problem(
            412,
            "precondition-failed",
            f"The {what} changed since it was read",
            f"The {what} is at version {current}, not the one If-Match names: read it again and retry the change.",
            headers={"ETag": etag(current)},
            current_version=current,
        )
