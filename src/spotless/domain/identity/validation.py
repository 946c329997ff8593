"""Field rules msgspec cannot express: IANA timezones, ISO 4217 currencies, slugs, locales, hours."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import time
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from spotless.lib.errors import FieldError

# Active ISO 4217 codes (funds, metals and testing codes left out).
CURRENCIES = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Slugs that would read as ours in URLs and emails.
RESERVED_SLUGS = frozenset({"api", "admin", "app", "www", "mail", "support", "help", "status", "static", "spotless"})
LOCALE_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|\d{3}))?$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


# Present in some system zoneinfo trees but not zones anyone lives in.
_NOT_ZONES = {"localtime", "Factory", "posixrules"}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(z for z in available_timezones() if z not in _NOT_ZONES and not z.startswith(("posix/", "right/")))


def timezone(value: str, field: str = "timezone") -> str:
    # Checked against the list rather than ZoneInfo(value), which also accepts file paths.
    if value not in _zones():
        raise FieldError(field, f"'{value}' is not an IANA timezone (for example America/Toronto).")
    return value


def currency(value: str, field: str = "currency") -> str:
    code = value.upper()
    if code not in CURRENCIES:
        raise FieldError(field, f"'{value}' is not an ISO 4217 currency code (for example CAD).")
    return code


def locale(value: str, field: str = "locale") -> str:
    if not LOCALE_RE.match(value):
        raise FieldError(field, f"'{value}' is not a locale tag such as en-CA or fr-CA.")
    return value


def slug(value: str, field: str = "slug") -> str:
    if not SLUG_RE.match(value):
        raise FieldError(field, "Use 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen.")
    if value in RESERVED_SLUGS:
        raise FieldError(field, f"'{value}' is reserved; choose another.")
    return value


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    candidate = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:50].strip("-")
    if not candidate or candidate in RESERVED_SLUGS:
        candidate = f"org-{secrets.token_hex(3)}"
    return candidate


def with_suffix(base: str) -> str:
    return f"{base[:56].rstrip('-')}-{secrets.token_hex(3)}"


def business_hours(hours: dict[str, list[dict[str, str]]], field: str = "business_hours") -> dict[str, Any]:
    """{"mon": [{"start": "08:00", "end": "12:00"}, ...], ...}: known days, HH:MM, ordered, no overlap."""
    cleaned: dict[str, list[dict[str, str]]] = {}
    for day, ranges in hours.items():
        if day not in WEEKDAYS:
            raise FieldError(f"{field}.{day}", f"Unknown day; use one of {', '.join(WEEKDAYS)}.")
        previous_end: time | None = None
        for index, item in enumerate(sorted(ranges, key=lambda r: r.get("start", ""))):
            start, end = item.get("start", ""), item.get("end", "")
            if not _TIME_RE.match(start) or not _TIME_RE.match(end):
                raise FieldError(f"{field}.{day}[{index}]", "Times are HH:MM, 24-hour.")
            start_t, end_t = time.fromisoformat(start), time.fromisoformat(end)
            if end_t <= start_t:
                raise FieldError(f"{field}.{day}[{index}]", "end must be after start.")
            if previous_end is not None and start_t < previous_end:
                raise FieldError(f"{field}.{day}", "Opening periods overlap.")
            previous_end = end_t
            cleaned.setdefault(day, []).append({"start": start, "end": end})
    return cleaned
