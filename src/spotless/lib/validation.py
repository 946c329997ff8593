"""Every invalid field of a request body at once, each with its path, words and a stable code.

msgspec stops at the first error and words it for programmers ("Object missing required field
`org_name`", "Expected `str` matching regex '^([01]\\d|2[0-3])...'"). When a body fails, this module
walks the decoded JSON against the body's type a second time, field by field (nested Structs, lists
and dicts included), converting each value on its own so that every bad field is reported, and turns
msgspec's message into words a person can act on plus a code the apps can translate:

    required, unknown_field, invalid_type, too_short, too_long, out_of_range, invalid_format,
    invalid_choice, invalid_value

Patterns get their words from `FORMATS` (keyed by the regular expression, so a schema module that
declares its own copy of a shared type still gets them), else from the type's `examples` or
`description`, never the expression itself.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

DecHook = Callable[[type, Any], Any]


@dataclass(frozen=True, slots=True)
class Issue:
    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


_NO_NUL = "must not contain NUL characters"
_EMAIL = "must be an email address like name@example.com"
_PHONE = "must be a phone number (digits, spaces, + ( ) . -; 3 to 40 characters)"
_TIME = "must be a time like 09:30"

# Regular expression -> (code, message). The key is the pattern exactly as declared in a Meta.
FORMATS: dict[str, tuple[str, str]] = {
    r"^[^\x00]*$": ("invalid_format", _NO_NUL),
    r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$": ("invalid_format", _EMAIL),
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": ("invalid_format", _EMAIL),
    r"^\+?[0-9 ().\-]{3,40}$": ("invalid_format", _PHONE),
    r"^([01]\d|2[0-3]):[0-5]\d(:00)?$": ("invalid_format", _TIME),
    r"^\d{2}:\d{2}(:\d{2})?$": ("invalid_format", _TIME),
    r"^[A-Za-z]{2}$": ("invalid_format", "must be a two-letter country code like US"),
    r"^(owner|admin|dispatcher|finance|viewer|worker)$": (
        "invalid_choice",
        "must be one of owner, admin, dispatcher, finance, viewer, worker",
    ),
    r"^(pending|accepted|declined|revoked|expired)$": (
        "invalid_choice",
        "must be one of pending, accepted, declined, revoked, expired",
    ),
}

_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "uuid": "a UUID",
    "datetime": "an ISO 8601 timestamp",
    "date": "a date as YYYY-MM-DD",
    "time": "a time like 09:30",
    "decimal": "a decimal number",
}

_AT = re.compile(r" - at `\$(.*)`$")
_EXPECTED_TYPE = re.compile(r"^Expected `([^`]+)`, got `([^`]+)`")
_LENGTH = re.compile(r"^Expected `([^`]+)` of length (>=|<=) (\d+)")
_RANGE = re.compile(r"^Expected `([^`]+)` (>=|<=|>|<) (-?[\d.e+]+)")
_REGEX = re.compile(r"^Expected `str` matching regex ")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]+)`")


def _type_words(names: str) -> str:
    words = [_TYPE_WORDS.get(name.strip(), name.strip()) for name in names.split("|") if name.strip() != "null"]
    return " or ".join(words) or "null"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _metas(annotation: Any) -> tuple[Any, list[msgspec.Meta]]:
    metas: list[msgspec.Meta] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        metas.extend(m for m in args[1:] if isinstance(m, msgspec.Meta))
    return annotation, metas


def _format_words(metas: list[msgspec.Meta]) -> tuple[str, str]:
    for meta in metas:
        if meta.pattern is not None and meta.pattern in FORMATS:
            return FORMATS[meta.pattern]
    for meta in metas:
        if meta.examples:
            return "invalid_format", f"must look like {meta.examples[0]}"
        if meta.description:
            return "invalid_format", f"must be {meta.description}"
    return "invalid_format", "is not in the expected format"


def describe(exc: msgspec.ValidationError, metas: list[msgspec.Meta] = ()) -> tuple[str, str, str]:  # type: ignore[assignment]
    """(relative path, code, words) for one msgspec error."""
    text = str(exc)
    suffix = ""
    if match := _AT.search(text):
        suffix = match.group(1)
        text = text[: match.start()]
    if match := _MISSING.match(text):
        return f"{suffix}.{match.group(1)}", "required", "is required"
    if match := _UNKNOWN.match(text):
        return f"{suffix}.{match.group(1)}", "unknown_field", "is not a known field"
    if _REGEX.match(text):
        code, words = _format_words(metas)
        return suffix, code, words
    if match := _LENGTH.match(text):
        kind, op, n = match.group(1), match.group(2), int(match.group(3))
        unit = "character" if kind == "str" else "item"
        plural = "" if n == 1 else "s"
        if op == ">=":
            words = "must not be empty" if n == 1 else f"must have at least {n} {unit}{plural}"
            return suffix, "too_short", words
        return suffix, "too_long", f"must have at most {n} {unit}{plural}"
    if match := _RANGE.match(text):
        op, bound = match.group(2), match.group(3)
        words = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}[op]
        return suffix, "out_of_range", f"must be {words} {bound}"
    if match := _EXPECTED_TYPE.match(text):
        return suffix, "invalid_type", f"must be {_type_words(match.group(1))}"
    if text.startswith("Invalid enum value"):
        return suffix, "invalid_choice", "is not one of the allowed values"
    if text.startswith("Invalid UUID"):
        return suffix, "invalid_format", "must be a UUID"
    if text.startswith("Invalid RFC3339 encoded datetime"):
        return suffix, "invalid_format", "must be an ISO 8601 timestamp with an offset, e.g. 2026-03-01T09:00:00-05:00"
    if text.startswith("Invalid RFC3339 encoded date") or text.startswith("Invalid ISO8601"):
        return suffix, "invalid_format", "must be a date as YYYY-MM-DD"
    if text.startswith("Invalid RFC3339 encoded time"):
        return suffix, "invalid_format", _TIME
    # Our own decoders and __post_init__ checks raise ValueError with words already.
    lowered = text[:1].lower() + text[1:]
    if " must be between " in text:
        return suffix, "out_of_range", lowered.removeprefix("the date ").removeprefix("the timestamp ")
    if text.startswith("Expected "):
        return suffix, "invalid_format", "must be " + text.removeprefix("Expected ")
    return suffix, "invalid_value", lowered


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) else None


class _Collector:
    def __init__(self, dec_hook: DecHook | None) -> None:
        self.dec_hook = dec_hook
        self.issues: list[Issue] = []

    def fails(self, value: Any, annotation: Any) -> msgspec.ValidationError | None:
        try:
            msgspec.convert(value, annotation, strict=False, str_keys=True, dec_hook=self.dec_hook)
        except msgspec.ValidationError as exc:
            return exc
        return None

    def leaf(self, path: str, exc: msgspec.ValidationError, metas: list[msgspec.Meta]) -> None:
        relative, code, words = describe(exc, metas)
        field = path + relative if path else relative.lstrip(".")
        self.issues.append(Issue(field or "body", words, code))

    def check(self, value: Any, annotation: Any, path: str) -> None:
        error = self.fails(value, annotation)
        if error is None:
            return
        inner, metas = _metas(annotation)
        origin = typing.get_origin(inner)
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(inner) if a is not type(None) and a is not msgspec.UnsetType]
            if value is not None and len(members) == 1:
                return self.check(value, members[0], path)
            return self.leaf(path, error, metas)
        if (struct := _struct_type(inner)) is not None and isinstance(value, dict):
            return self.struct(value, struct, path, error)
        if origin in (list, tuple, set, frozenset) and isinstance(value, list):
            before = len(self.issues)
            # The list itself (its length) first, then each item.
            args = typing.get_args(inner)
            for meta in metas:
                if length_error := self.fails(value, typing.Annotated[list[Any], meta]):
                    self.leaf(path, length_error, metas)
            if args and (origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)):
                for index, item in enumerate(value):
                    self.check(item, args[0], _join(path, index))
            if len(self.issues) == before:
                self.leaf(path, error, metas)
            return None
        if origin is dict and isinstance(value, dict):
            before = len(self.issues)
            args = typing.get_args(inner)
            if len(args) == 2:
                for key, item in value.items():
                    self.check(item, args[1], _join(path, str(key)))
            if len(self.issues) == before:
                self.leaf(path, error, metas)
            return None
        return self.leaf(path, error, metas)

    def struct(
        self, value: dict[str, Any], struct: type[msgspec.Struct], path: str, error: msgspec.ValidationError
    ) -> None:
        before = len(self.issues)
        fields = msgspec.structs.fields(struct)
        known = {f.encode_name for f in fields}
        for info in fields:
            if info.encode_name not in value:
                if info.required:
                    self.issues.append(Issue(_join(path, info.encode_name), "is required", "required"))
                continue
            self.check(value[info.encode_name], info.type, _join(path, info.encode_name))
        if struct.__struct_config__.forbid_unknown_fields:
            for key in value:
                if key not in known:
                    self.issues.append(Issue(_join(path, str(key)), "is not a known field", "unknown_field"))
        if len(self.issues) == before:
            # Every field is fine alone: the Struct's own check (__post_init__) refused the whole.
            self.leaf(path, error, [])


def structs_in(annotation: Any, found: set[type], seen: set[int] | None = None) -> None:
    """Every Struct class `annotation` can hold (through Annotated, unions, containers and fields)."""
    seen = set() if seen is None else seen
    if id(annotation) in seen:
        return
    seen.add(id(annotation))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        found.add(annotation)
        for field in msgspec.structs.fields(annotation):
            structs_in(field.type, found, seen)
        return
    origin = typing.get_origin(annotation)
    if origin is not None and isinstance(origin, type) and issubclass(origin, msgspec.Struct):
        structs_in(origin, found, seen)
    for argument in typing.get_args(annotation):
        structs_in(argument, found, seen)


def collect(value: Any, annotation: Any, dec_hook: DecHook | None = None) -> list[Issue]:
    """Every reason `value` (decoded JSON) does not convert to `annotation`; empty if it does."""
    collector = _Collector(dec_hook)
    collector.check(value, annotation, "")
    return collector.issues
