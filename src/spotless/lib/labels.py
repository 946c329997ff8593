"""Free-form labels (client tags, worker skills): case-insensitive, so stored normalised."""

from __future__ import annotations

from collections.abc import Sequence

from spotless.lib.errors import FieldError


def clean_labels(values: Sequence[str], field: str) -> list[str]:
    """Trimmed, inner whitespace folded, lower-cased, de-duplicated; first-seen order kept."""
    seen: dict[str, None] = {}
    for value in values:
        cleaned = " ".join(value.split()).lower()
        if not cleaned:
            raise FieldError(field, f"{field} cannot be blank")
        seen.setdefault(cleaned, None)
    return list(seen)
