"""Integrations' cross-organisation factory (tests/support/tenancy.py): providers are declared by
code, not created per organisation, so `provider_name` names one of them. Each organisation's
connections are its own (tests/integration/integrations/core/test_connect.py proves it)."""

from __future__ import annotations

from typing import Any

from tests.support.tenancy import GLOBAL_PARAMS, register


@register("provider_name")
async def api_provider_name(client: Any, member: Any, ids: dict[str, str]) -> str:
    return "google"


GLOBAL_PARAMS.add("provider_name")
