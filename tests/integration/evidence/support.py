"""Arranging a job with an assigned cleaner, and making, uploading and reading photos."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from PIL import Image

from tests.support.factories import api_worker, api_world
from tests.support.identity import add_member, signup


async def arrange(client: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1, hours=("00:00", "23:59"))
    cleaner = await add_member(client, owner, "worker")
    mine = await api_worker(client, owner, name="Sam", user_id=cleaner.user_id, hours=("00:00", "23:59"))
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(hours=1)
    body = world.booking(start.astimezone(world.tz).date(), 0, workers=[mine], override={"reason": "any hour"})
    body["starts_at"] = start.isoformat()
    booking = await client.post("/v1/bookings", json=body, headers=owner.headers)
    assert booking.status_code == 201, booking.text
    return owner, world, cleaner, booking.json()


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0132] = "2026:12:01 10:00:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 12.5), "W", (0.0, 7.0, 39.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()


async def upload(api: Any, form: dict[str, Any], data: bytes, filename: str = "photo.jpg") -> httpx.Response:
    """POST the presigned form as a browser would: its fields, then the file."""
    files = {"file": (filename, data, form["fields"].get("Content-Type", "application/octet-stream"))}
    if form["url"].startswith("/"):
        return await api.post(form["url"], data=form["fields"], files=files)
    async with httpx.AsyncClient() as http:
        return await http.post(form["url"], data=form["fields"], files=files)


async def fetch(api: Any, url: str) -> httpx.Response:
    if url.startswith("/"):
        return await api.get(url)
    async with httpx.AsyncClient() as http:
        return await http.get(url)
