"""Request bodies: whatever bytes a client sends, a body that cannot be JSON answers 400 (or 415).

Litestar decodes every JSON body untyped first (`Request.json()`), then converts it to the handler's
Struct. msgspec's untyped decode raises `RecursionError` for deep nesting (`[` * 10_000) and
`UnicodeDecodeError` for bytes that are not UTF-8, neither of which is the `DecodeError` Litestar
turns into a 400: both ended as 500s. This request class makes every failure to decode a
`SerializationException`, which Litestar answers as a 400 for every route. A body sent with another
media type (a form, XML) is a 415.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, SerializationException

MAX_DEPTH_DETAIL = "The JSON body is nested too deeply."


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class BodyRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        media_type = self.content_type[0].lower()
        # No Content-Type is taken as JSON (curl -d, old clients); a different one is refused, not guessed.
        if media_type and not _is_json(media_type) and await self.body():
            raise HTTPException(
                status_code=415,
                detail=f"Send the body as application/json (got {media_type[:100]}).",
            )
        try:
            return await super().json()
        except RecursionError:
            raise SerializationException(MAX_DEPTH_DETAIL) from None
        except UnicodeDecodeError:
            raise SerializationException("The JSON body is not valid UTF-8.") from None
        except (ValueError, TypeError) as exc:
            # msgspec's own errors are DecodeError (a ValueError) and already handled by Litestar.
            raise SerializationException(f"The body is not valid JSON: {exc}") from None
