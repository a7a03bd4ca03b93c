"""Photo evidence: base64 in, checked by magic bytes and size, stored in the database."""

from __future__ import annotations

import base64
import binascii

from cloud.governance.errors import Invalid
from cloud.governance.models import PHOTO_MAX_BYTES

MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}


def decode(
    photo_b64: str, photo_type: str | None, *, field: str = "photo_b64"
) -> tuple[bytes, str]:
    """The image bytes and their content type, else :class:`Invalid` naming the field.

    ``photo_type`` (``image/jpeg``, ``image/png``, or ``jpeg``/``png``) must match the bytes.
    """
    if photo_type is None:
        raise Invalid("photo_type", "required with a photo: image/jpeg or image/png")
    declared = photo_type if photo_type.startswith("image/") else f"image/{photo_type}"
    if declared not in MAGIC:
        raise Invalid("photo_type", f"{photo_type!r} is not image/jpeg or image/png")
    try:
        data = base64.b64decode(photo_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid(field, f"not valid base64: {exc}") from exc
    if not data:
        raise Invalid(field, "empty photo")
    if len(data) > PHOTO_MAX_BYTES:
        raise Invalid(field, f"photo is {len(data)} bytes, more than {PHOTO_MAX_BYTES}")
    actual = next((t for t, magics in MAGIC.items() if data.startswith(magics)), None)
    if actual is None:
        raise Invalid(field, "not a JPEG or PNG image (checked by its first bytes)")
    if actual != declared:
        raise Invalid("photo_type", f"declared {declared} but the bytes are {actual}")
    return data, actual
