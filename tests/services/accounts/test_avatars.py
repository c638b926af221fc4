"""Avatars: a picture declaring huge dimensions is refused from its header before any decoding, JPEGs decode
scaled down, and image work is capped per process."""

from __future__ import annotations

import io
import struct
import threading
import zlib

import pytest
from PIL import Image, ImageFile

from bulkapp.services.accounts import profiles
from bulkapp.services.accounts.users import AccountError


def bomb_png(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` RGBA pixels, all zero: deflate shrinks them ~1000 times (9000 x 9000
    is about 315 KB on disk and 324 MB decoded). Written row by row, so making it needs no big buffer."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 4 * width)  # filter byte + RGBA
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_png(9000, 9000)


@pytest.fixture
def user(tenant, app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "AVATAR_DIR", str(tmp_path))
    from flask import current_app

    monkeypatch.setitem(current_app.config, "AVATAR_DIR", str(tmp_path))
    return tenant.test_user


def test_the_9000_pixel_bomb_is_refused_from_its_header_without_decoding(user, bomb, monkeypatch):
    assert 250_000 < len(bomb) < 400_000  # the 315 KB file of the report
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.size) or real_load(image))
    with pytest.raises(AccountError) as refused:
        profiles.save_avatar(user, bomb)
    assert str(refused.value) == "The picture is too large: use one of at most 4,096 × 4,096 pixels."
    assert decoded == [] and user.avatar is None


@pytest.mark.parametrize("size", [(4097, 16), (16, 4097)])
def test_one_side_over_4096_is_refused(user, size):
    with pytest.raises(AccountError, match="at most 4,096"):
        profiles.save_avatar(user, bomb_png(*size))


def test_a_4096_square_is_accepted_and_stored_at_256(user, tmp_path):
    name = profiles.save_avatar(user, bomb_png(4096, 4096))
    with Image.open(tmp_path / name) as stored:
        assert stored.format == "PNG" and stored.size == (256, 256)


def test_a_large_jpeg_is_decoded_scaled_down(user, tmp_path, monkeypatch):
    """``draft`` makes the JPEG decoder produce 1/8 of 4000 x 3000 (500 x 375) instead of 12 million pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(buffer, format="JPEG")
    loaded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: loaded.append(image.size) or real_load(image))
    name = profiles.save_avatar(user, buffer.getvalue())
    assert loaded and max(width * height for width, height in loaded) <= 500 * 375
    with Image.open(tmp_path / name) as stored:
        assert stored.size == (256, 192)


def test_image_work_is_capped_per_process(user, monkeypatch):
    gate = threading.BoundedSemaphore(1)
    monkeypatch.setattr(profiles, "_image_work", gate)
    monkeypatch.setattr(profiles, "AVATAR_WAIT_SECONDS", 0.05)
    picture = io.BytesIO()
    Image.new("RGB", (64, 64)).save(picture, format="PNG")
    gate.acquire()  # another upload is being decoded
    try:
        with pytest.raises(AccountError, match="Try again in a minute"):
            profiles.save_avatar(user, picture.getvalue())
    finally:
        gate.release()
    assert profiles.save_avatar(user, picture.getvalue())  # free again: it goes through


def test_pillow_refuses_decompression_bombs_beyond_the_avatar_limit():
    assert Image.MAX_IMAGE_PIXELS == 4096 * 4096
