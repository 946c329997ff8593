"""What a file really is, from its first bytes (the declared MIME type is the client's word only).

Signatures: JPEG `FF D8 FF`; PNG's eight-byte header; WebP `RIFF....WEBP`; HEIC/HEIF an ISO-BMFF
`ftyp` box whose major brand is one of the HEIF image brands."""

from __future__ import annotations

SNIFF_BYTES = 32
_PNG = b"\x89PNG\r\n\x1a\n"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff(head: bytes) -> str | None:
    """The MIME type of a JPEG, PNG, WebP or HEIC file starting with `head`, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(_PNG):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None
