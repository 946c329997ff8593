"""The baseline: a bare Litestar JSON endpoint with no plugins or middleware, served the same way."""

from litestar import Litestar, get


@get("/json", sync_to_thread=False)
def json_endpoint() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar([json_endpoint], logging_config=None)
