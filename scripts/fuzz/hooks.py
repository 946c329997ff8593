"""Schemathesis hooks for `just fuzz` (loaded through SCHEMATHESIS_HOOKS by scripts/fuzz/__main__.py).

Every request is made as the fuzz organisation's owner. The token comes from a real sign-in and is
fetched again whenever the API answers 401: the fuzzer itself may end the session (POST
/v1/auth/logout is one of the operations it calls), and that must not turn the rest of the run into
401s. If the owner can no longer sign in at all, a new organisation is signed up."""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import httpx
import schemathesis
from hypothesis.internal import lambda_sources

BASE_URL = os.environ.get("FUZZ_BASE_URL", "http://127.0.0.1:8000")

# CPython 3.11 before 3.11.9 can raise SystemError "AST constructor recursion depth mismatch" from
# ast.parse when garbage collection runs Python code mid-parse (fixed upstream, gh-106905).
# Hypothesis parses a source file only to spell a lambda in a strategy's repr, so on that error
# the lambda is described as unknown instead of failing whichever operation was being generated.
_describe_lambda = lambda_sources._lambda_description


def _describe_lambda_or_unknown(f: Any, *args: Any, **kwargs: Any) -> str:
    try:
        return str(_describe_lambda(f, *args, **kwargs))
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_lambda_or_unknown


def _signup() -> str:
    email = f"fuzz-owner-{uuid.uuid4().hex[:12]}@example.com"
    password = f"fuzz-{uuid.uuid4().hex}"
    body = {
        "org_name": "Fuzz Cleaning",
        "email": email,
        "password": password,
        "full_name": "Fuzz Owner",
        "timezone": "America/Toronto",
        "currency": "CAD",
    }
    response = httpx.post(f"{BASE_URL}/v1/auth/signup", json=body, timeout=30)
    response.raise_for_status()
    os.environ["FUZZ_EMAIL"], os.environ["FUZZ_PASSWORD"] = email, password
    return str(response.json()["access_token"])


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Never aim a member action at the fuzz owner itself. While another owner exists (the fuzzer
    makes some), an owner may deactivate, demote, log out or reset the password of its own account;
    the fuzzer finds its own id in GET /v1/iam/users and did all four, after which every request was
    a 401 or 403 and nothing else was tested. Such a case is sent for a seeded member instead."""
    owner, spare = os.environ.get("FUZZ_OWNER_ID"), os.environ.get("FUZZ_SPARE_USER_ID")
    params = case.path_parameters or {}
    if owner and spare and str(params.get("user_id", "")).lower() == owner.lower():
        params["user_id"] = spare


def owner_token() -> str:
    email, password = os.environ.get("FUZZ_EMAIL"), os.environ.get("FUZZ_PASSWORD")
    if email and password:
        response = httpx.post(f"{BASE_URL}/v1/auth/login", json={"email": email, "password": password}, timeout=30)
        if response.status_code == 200:
            return str(response.json()["access_token"])
        print(f"fuzz hooks: the owner cannot sign in ({response.status_code} {response.text[:300]})", file=sys.stderr)
    return _signup()


@schemathesis.auth(refresh_interval=600)
class OwnerToken:
    def get(self, case: Any, ctx: Any) -> str:
        return owner_token()

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
