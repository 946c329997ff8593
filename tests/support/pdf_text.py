"""The text a PDF shows, for tests: every string drawn with `Tj`/`TJ` in the page content streams
(inflated when compressed), in order, one line per drawn string. Enough for what fpdf2 writes with
its core fonts (WinAnsi); not a general PDF parser."""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(rb"<<(?P<dict>(?:(?!>>).)*?)>>\s*stream\r?\n(?P<body>.*?)\r?\nendstream", re.S)
_SHOWN = re.compile(rb"\((?P<s>(?:\\.|[^\\)])*)\)\s*Tj|\[(?P<a>(?:\\.|[^\]])*)\]\s*TJ", re.S)
_ARRAY_STRING = re.compile(rb"\(((?:\\.|[^\\)])*)\)", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i : i + 1]
        if byte != b"\\":
            out += byte
            i += 1
            continue
        nxt = raw[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        elif nxt.isdigit():
            octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
            assert octal
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
        else:
            i += 2  # a line continuation or an unknown escape: dropped
    return bytes(out)


def content_streams(data: bytes) -> list[bytes]:
    assert data.startswith(b"%PDF-"), "not a PDF"
    streams = []
    for match in _STREAM.finditer(data):
        body = match.group("body")
        if b"/FlateDecode" in match.group("dict"):
            try:
                body = zlib.decompress(body)
            except zlib.error:
                continue
        streams.append(body)
    return streams


def pdf_text(data: bytes) -> str:
    shown: list[str] = []
    for stream in content_streams(data):
        for match in _SHOWN.finditer(stream):
            single = match.group("s")
            parts = [single] if single is not None else _ARRAY_STRING.findall(match.group("a"))
            shown.append(b"".join(_unescape(p) for p in parts).decode("cp1252", errors="replace"))
    return "\n".join(shown)
