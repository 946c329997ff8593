"""The sniffer reads the first bytes, not the name or the declared type."""

from __future__ import annotations

import pytest

from spotless.domain.evidence.sniff import sniff
from tests.integration.evidence.support import jpeg_with_gps, png


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (jpeg_with_gps()[:32], "image/jpeg"),
        (png()[:32], "image/png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00", None),  # an MP4
        (b"GIF89a\x01\x00", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"\xff\xd8", None),  # too short to be a JPEG
        (b"", None),
    ],
)
def test_sniff(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected
