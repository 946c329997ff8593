"""A body with several bad fields answers every one of them at once: path, words, stable code."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client
from tests.support.identity import signup, unique_email


def _errors(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-error", problem
    return sorted(problem["errors"], key=lambda e: e["field"])


async def test_signup_lists_two_bad_fields_and_a_missing_one(client: Client) -> None:
    response = await client.post(
        "/v1/auth/signup",
        json={
            "email": "not-an-email",
            "org_name": "",
            "password": "a long enough password",
            "timezone": "America/Toronto",
            "favourite_colour": "blue",
        },
    )
    assert _errors(response) == [
        {"field": "currency", "message": "is required", "code": "required"},
        {"field": "email", "message": "must be an email address like name@example.com", "code": "invalid_format"},
        {"field": "favourite_colour", "message": "is not a known field", "code": "unknown_field"},
        {"field": "org_name", "message": "must not be empty", "code": "too_short"},
    ]
    detail = response.json()["detail"]
    assert "currency is required" in detail and "regex" not in detail and "data" not in detail


async def test_a_client_with_a_bad_nested_address_names_its_path(client: Client) -> None:
    owner = await signup(client)
    response = await client.post(
        "/v1/clients",
        headers=owner.headers,
        json={
            "name": "Jo Client",
            "email": unique_email(),
            "phone": "call me",
            "tags": ["ok", "x" * 51],
            "addresses": [
                {"line1": "1 Main St", "city": "Toronto", "country": "CA"},
                {"line1": "2 Main St", "country": "Canada", "postal_code": 12345, "bedrooms": 500},
            ],
        },
    )
    assert _errors(response) == [
        {"field": "addresses[1].bedrooms", "message": "must be at most 100", "code": "out_of_range"},
        {"field": "addresses[1].city", "message": "is required", "code": "required"},
        {
            "field": "addresses[1].country",
            "message": "must be a two-letter country code like US",
            "code": "invalid_format",
        },
        {"field": "addresses[1].postal_code", "message": "must be text", "code": "invalid_type"},
        {
            "field": "phone",
            "message": "must be a phone number (digits, spaces, + ( ) . -; 3 to 40 characters)",
            "code": "invalid_format",
        },
        {"field": "tags[1]", "message": "must have at most 50 characters", "code": "too_long"},
    ]


async def test_a_worker_with_a_bad_time_is_told_the_time_format(client: Client) -> None:
    owner = await signup(client)
    worker = await client.post("/v1/workers", json={"name": "Ana Cleaner"}, headers=owner.headers)
    assert worker.status_code == 201, worker.text
    response = await client.put(
        f"/v1/workers/{worker.json()['id']}/hours",
        headers=owner.headers,
        json={"hours": [{"weekday": 0, "start": "09:00", "end": "17:00"}, {"weekday": "mon", "start": "9am"}]},
    )
    assert _errors(response) == [
        {"field": "hours[1].end", "message": "is required", "code": "required"},
        {"field": "hours[1].start", "message": "must be a time like 09:30", "code": "invalid_format"},
        {"field": "hours[1].weekday", "message": "must be a whole number", "code": "invalid_type"},
    ]
    for error in response.json()["errors"]:
        assert "regex" not in error["message"] and "Expected" not in error["message"]


async def test_a_body_that_is_not_an_object_and_a_bad_query_parameter(client: Client) -> None:
    owner = await signup(client)
    not_an_object = await client.post("/v1/workers", json=["Ana"], headers=owner.headers)
    assert _errors(not_an_object) == [{"field": "body", "message": "must be an object", "code": "invalid_type"}]
    bad_query = await client.get("/v1/workers?limit=abc", headers=owner.headers)
    assert [(e["field"], e["code"]) for e in _errors(bad_query)] == [("limit", "invalid_type")]


def test_every_pattern_a_client_can_send_has_words(app: Any) -> None:
    """A new regular expression in a request type needs words in lib/validation.FORMATS (or examples /
    a description on its Meta): otherwise the answer would fall back to "is not in the expected format"."""
    import typing

    import msgspec

    from spotless.lib.validation import FORMATS, structs_in

    structs: set[type] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None:
                structs_in(data.annotation, structs)

    def patterns(annotation: Any) -> list[msgspec.Meta]:
        found = []
        if typing.get_origin(annotation) is typing.Annotated:
            found += [m for m in typing.get_args(annotation)[1:] if isinstance(m, msgspec.Meta) and m.pattern]
        for argument in typing.get_args(annotation):
            found += patterns(argument)
        return found

    wordless = {
        f"{struct.__name__}.{info.name}: {meta.pattern}"
        for struct in structs
        for info in msgspec.structs.fields(struct)
        for meta in patterns(info.type)
        if meta.pattern not in FORMATS and not meta.examples and not meta.description
    }
    assert structs and not wordless, wordless
