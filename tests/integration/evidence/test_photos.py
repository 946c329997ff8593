"""Before/after photos on both backends (moto S3 on loopback, a local directory): the presigned
form we sign, EXIF/GPS stripped on confirm, types sniffed from the bytes, size and quota limits,
and a cleaner limited to their own jobs."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from spotless.app import create_app
from spotless.lib.storage.local import UPLOAD_ROUTE
from tests.conftest import make_settings
from tests.integration.evidence.support import arrange, fetch, jpeg_with_gps, png, upload
from tests.support.client import app_client
from tests.support.identity import signup


def _photos_url(booking: dict) -> str:
    return f"/v1/worker/jobs/{booking['id']}/photos"


async def _ask(api, cleaner, booking, *, content_type="image/jpeg", size=50_000, kind="before"):
    return await api.post(
        f"{_photos_url(booking)}/uploads",
        json={"kind": kind, "content_type": content_type, "size_bytes": size},
        headers=cleaner.headers,
    )


async def test_a_jpeg_with_gps_comes_back_clean_with_a_thumbnail(api, storage_settings):
    owner, _world, cleaner, booking = await arrange(api)
    asked = await _ask(api, cleaner, booking)
    assert asked.status_code == 201, asked.text
    form = asked.json()
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the fixture does carry GPS
    uploaded = await upload(api, form, original)
    assert uploaded.status_code in (200, 201, 204), uploaded.text
    confirmed = await api.post(f"{_photos_url(booking)}/{form['photo_id']}/confirm", headers=cleaner.headers)
    assert confirmed.status_code == 200, confirmed.text
    photo = confirmed.json()
    assert photo["status"] == "confirmed" and photo["content_type"] == "image/jpeg"
    assert (photo["width"], photo["height"]) == (640, 480)
    again = await api.post(f"{_photos_url(booking)}/{form['photo_id']}/confirm", headers=cleaner.headers)
    assert again.status_code == 200 and again.json()["id"] == photo["id"]  # a retried confirm

    # The office sees it, through short-lived signed links.
    evidence = await api.get(f"/v1/bookings/{booking['id']}/evidence", headers=owner.headers)
    assert evidence.status_code == 200, evidence.text
    [seen] = evidence.json()["photos"]
    stored = await fetch(api, seen["url"])
    assert stored.status_code == 200
    clean = Image.open(io.BytesIO(stored.content))
    assert clean.format == "JPEG"
    exif = clean.getexif()
    assert not exif.get_ifd(0x8825) and 0x010F not in exif and "exif" not in clean.info
    assert b"SpyCam" not in stored.content
    thumb = Image.open(io.BytesIO((await fetch(api, seen["thumbnail_url"])).content))
    assert max(thumb.size) <= storage_settings.photos.thumb_px
    # The raw upload is gone (and queued again for after its form's expiry).
    from spotless.lib.storage import build_storage

    assert await build_storage(storage_settings).size(form["fields"]["key"]) is None


async def test_the_signed_form_has_the_exact_key_type_size_range_and_a_short_expiry(api, storage_settings):
    _owner, _world, cleaner, booking = await arrange(api)
    before = datetime.now(UTC)
    form = (await _ask(api, cleaner, booking)).json()
    fields = form["fields"]
    assert fields["key"].startswith(f"photos/{cleaner.org_id}/{booking['id']}/{form['photo_id']}/")
    assert fields["Content-Type"] == "image/jpeg"
    policy = json.loads(base64.b64decode(fields["policy"]))
    max_bytes = storage_settings.photos.max_bytes
    ttl = storage_settings.photos.upload_ttl_seconds
    assert form["max_bytes"] == max_bytes
    if storage_settings.storage.backend == "s3":
        # moto does not enforce these: assert what S3 would.
        conditions = policy["conditions"]
        assert {"key": fields["key"]} in conditions
        assert {"Content-Type": "image/jpeg"} in conditions
        assert ["content-length-range", 1, max_bytes] in conditions
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and "x-amz-signature" in fields
    else:
        assert form["url"] == UPLOAD_ROUTE
        assert (policy["key"], policy["content_type"]) == (fields["key"], "image/jpeg")
        assert (policy["min_bytes"], policy["max_bytes"]) == (1, max_bytes)
        expiration = datetime.fromtimestamp(policy["expires"], UTC)
    assert before + timedelta(seconds=ttl - 2) <= expiration <= datetime.now(UTC) + timedelta(seconds=ttl + 1)


@pytest.mark.parametrize("case", ["png-as-jpeg", "text-as-jpeg"])
async def test_the_real_type_is_sniffed_and_a_refused_file_is_deleted(api, storage_settings, case):
    _owner, _world, cleaner, booking = await arrange(api)
    form = (await _ask(api, cleaner, booking)).json()
    data = png() if case == "png-as-jpeg" else b"just some text, honestly a JPEG" * 20
    assert (await upload(api, form, data, filename="photo.jpg")).status_code in (200, 201, 204)
    refused = await api.post(f"{_photos_url(booking)}/{form['photo_id']}/confirm", headers=cleaner.headers)
    assert refused.status_code == 415, refused.text
    problem = refused.json()
    assert problem["type"] == "/problems/photo-type-not-allowed"
    assert problem["detected"] == ("image/png" if case == "png-as-jpeg" else "unknown")
    from spotless.lib.storage import build_storage

    assert await build_storage(storage_settings).size(form["fields"]["key"]) is None
    listed = await api.get(_photos_url(booking), headers=cleaner.headers)
    assert [p["status"] for p in listed.json()] == ["pending"]  # the janitor removes the row later


async def test_a_png_declared_as_png_is_kept_as_png(api):
    _owner, _world, cleaner, booking = await arrange(api)
    form = (await _ask(api, cleaner, booking, content_type="image/png")).json()
    await upload(api, form, png(), filename="p.png")
    confirmed = await api.post(f"{_photos_url(booking)}/{form['photo_id']}/confirm", headers=cleaner.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["content_type"] == "image/png"


async def test_declared_types_and_sizes_outside_the_limits_are_refused(api, storage_settings):
    _owner, _world, cleaner, booking = await arrange(api)
    too_big = await _ask(api, cleaner, booking, size=storage_settings.photos.max_bytes + 1)
    assert too_big.status_code == 413 and too_big.json()["type"] == "/problems/photo-too-large"
    gif = await _ask(api, cleaner, booking, content_type="image/gif")
    assert gif.status_code == 400 and gif.json()["errors"][0]["field"] == "content_type"


async def test_an_object_over_the_maximum_is_refused_on_confirm(s3_server, bucket):
    """S3 enforces the form's content-length-range; moto does not, which lets this test show the
    server's own HEAD check catching an object that is too large anyway."""
    settings = make_settings(**s3_server.env(bucket), ORDER_PHOTO_MAX_BYTES="2048")
    async with app_client(create_app(settings)) as api:
        _owner, _world, cleaner, booking = await arrange(api)
        form = (await _ask(api, cleaner, booking, size=1000)).json()
        assert (await upload(api, form, jpeg_with_gps())).status_code == 204
        refused = await api.post(f"{_photos_url(booking)}/{form['photo_id']}/confirm", headers=cleaner.headers)
        assert refused.status_code == 413 and refused.json()["max_bytes"] == 2048
        assert form["fields"]["key"] not in s3_server.keys(bucket)


async def test_the_local_upload_route_enforces_the_signed_conditions(tmp_path):
    settings = make_settings(
        ORDER_STORAGE_BACKEND="local", ORDER_UPLOAD_ROOT=str(tmp_path / "u"), ORDER_PHOTO_MAX_BYTES="2048"
    )
    async with app_client(create_app(settings)) as api:
        _owner, _world, cleaner, booking = await arrange(api)
        form = (await _ask(api, cleaner, booking, size=1000)).json()
        big = await upload(api, form, b"\xff\xd8\xff" + b"0" * 4000)
        assert big.status_code == 400 and big.json()["type"] == "/problems/upload-conditions-unmet"
        other_key = {**form, "fields": {**form["fields"], "key": "photos/elsewhere/x"}}
        assert (await upload(api, other_key, b"\xff\xd8\xff")).status_code == 400
        forged = {**form, "fields": {**form["fields"], "signature": "0" * 64}}
        assert (await upload(api, forged, b"\xff\xd8\xff")).status_code == 403


async def test_the_quota_is_a_409(tmp_path):
    settings = make_settings(
        ORDER_STORAGE_BACKEND="local", ORDER_UPLOAD_ROOT=str(tmp_path / "u"), ORDER_PHOTO_QUOTA_COUNT="1"
    )
    async with app_client(create_app(settings)) as api:
        _owner, _world, cleaner, booking = await arrange(api)
        assert (await _ask(api, cleaner, booking)).status_code == 201
        full = await _ask(api, cleaner, booking)
        assert full.status_code == 409, full.text
        assert full.json()["type"] == "/problems/photo-quota-reached" and full.json()["limit"] == 1
        # Another organisation has its own quota.
        _o, _w, theirs, their_booking = await arrange(api)
        assert (await _ask(api, theirs, their_booking)).status_code == 201


async def test_a_cleaner_reaches_only_their_own_jobs(api):
    owner, world, cleaner, booking = await arrange(api)
    other = await api.post(
        "/v1/bookings",
        json={
            **world.booking(datetime.now(UTC).date(), 0, override={"reason": "x"}),
            "starts_at": booking["starts_at"],
        },
        headers=owner.headers,
    )
    assert other.status_code == 201, other.text
    form = (await _ask(api, cleaner, booking)).json()
    await upload(api, form, jpeg_with_gps())
    assert (await _ask(api, cleaner, other.json())).status_code == 404
    assert (await api.get(_photos_url(other.json()), headers=cleaner.headers)).status_code == 404
    confirm_elsewhere = f"{_photos_url(other.json())}/{form['photo_id']}/confirm"
    assert (await api.post(confirm_elsewhere, headers=cleaner.headers)).status_code == 404
    # The office may read the job's evidence; a cleaner only their own job's.
    assert (await api.get(f"/v1/bookings/{other.json()['id']}/evidence", headers=cleaner.headers)).status_code == 404
    assert (await api.get(f"/v1/bookings/{booking['id']}/evidence", headers=cleaner.headers)).status_code == 200
    # Without a worker profile there is no field app.
    no_profile = await _ask(api, owner, booking)
    assert no_profile.status_code == 403 and no_profile.json()["type"] == "/problems/no-worker-profile"
    # Another organisation's people see nothing of it.
    stranger = await signup(api, name="Elsewhere")
    assert (await api.get(f"/v1/bookings/{booking['id']}/evidence", headers=stranger.headers)).status_code == 404
    assert (await _ask(api, stranger, booking)).status_code in (403, 404)
