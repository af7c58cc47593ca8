"""Hostile input, fuzzed: the served image decoding (``image_bytes_to_input``: header check, then decode; the
Triton ``preprocess`` model runs this very code, vendored) and the real local server.

``hostile_input(rng)`` turns the draws of one ``random.Random`` into one input: random bytes (bare or behind
an image signature), a valid seed image (PNG/JPEG/WebP/TIFF/GIF/BMP in many modes: 1-bit, 16-bit, float,
CMYK, palette with transparency, animated, EXIF-rotated, real decompression bombs), a seed truncated,
bit-flipped or overwritten, or a header declaring a huge size over a tiny body. Hypothesis passes a
``st.randoms()`` so its choices shrink (``derandomize=True``: the same inputs on every run); the memory test
passes ``random.Random(i)``. Every input must end in a result or a ``BadImageError`` with a message, within
2 s, without memory growth. The inputs the fuzzing found are kept below as explicit cases.

    .venv/bin/python -m pytest tests/serving/test_fuzz_images.py -s            # 5,000 inputs + memory + server
    .venv/bin/python -m pytest tests/serving/test_fuzz_images.py -s -m slow    # 50,000 inputs
"""

from __future__ import annotations

import functools
import gc
import io
import random
import resource
import struct
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from lowres_ocr.core.images import BadImageError, decode_image
from lowres_ocr.serving.image_input import image_bytes_to_input

# Pillow warns about corrupt EXIF, odd TIFF tags and large images: expected outcomes here, not failures
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]

SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM",
              b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"8BPS", b"\x00\x00\x00\x0cjP  ")
#: declared sizes worth trying: the limits' edges, signed/unsigned overflow, zero
EDGE_SIDES = (0, 1, 3, 4, 2048, 2049, 3072, 3073, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1)


def _pattern(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A noisy RGB image with a dark bar (something to read), converted to ``mode``."""
    rng = random.Random(seed)
    w, h = size
    img = Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(w * h * 3)))
    img.paste((0, 0, 0), (w // 4, h // 3, w // 2, 2 * h // 3))
    return img.convert(mode) if mode not in ("I;16", "F", "I") else img.convert("L").convert(mode)


def _save(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _palette_with_alpha() -> Image.Image:
    img = _pattern("RGB", (24, 12)).quantize(16)
    img.info["transparency"] = bytes(range(0, 256, 16))  # one alpha byte per palette entry
    return img


def _frames(mode: str, n: int) -> list[Image.Image]:
    return [_pattern(mode, (24, 12), seed=i) for i in range(n)]


def _gif_animated() -> bytes:
    first, *rest = _frames("P", 4)
    return _save(first, "GIF", save_all=True, append_images=rest, duration=10, loop=0, transparency=0, disposal=2)


def _seed_builders() -> dict[str, Callable[[], bytes]]:
    """name → builder of one valid encoded image."""
    s = (24, 12)
    out: dict[str, Callable[[], bytes]] = {
        f"png-{m}": functools.partial(lambda m: _save(_pattern(m, s), "PNG"), m)
        for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")
    }
    out.update({
        "png-P-trns-index": lambda: _save(_pattern("P", s), "PNG", transparency=3),
        "png-P-trns-alpha": lambda: _save(_palette_with_alpha(), "PNG"),
        "png-RGB-trns": lambda: _save(_pattern("RGB", s), "PNG", transparency=(0, 0, 0)),
        "png-exif-rot90": lambda: _save(_pattern("RGB", s), "PNG", exif=_exif(6)),
        "apng": lambda: _save(_frames("RGBA", 1)[0], "PNG", save_all=True, append_images=_frames("RGBA", 3), duration=10),
        "jpeg-L": lambda: _save(_pattern("L", s), "JPEG"),
        "jpeg-RGB": lambda: _save(_pattern("RGB", s), "JPEG", quality=50),
        "jpeg-CMYK": lambda: _save(_pattern("CMYK", s), "JPEG"),
        "jpeg-progressive": lambda: _save(_pattern("RGB", s), "JPEG", progressive=True, optimize=True),
        "jpeg-bad-exif": lambda: _save(_pattern("RGB", s), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"),
        "webp-lossy": lambda: _save(_pattern("RGB", s), "WEBP", quality=30),
        "webp-lossless-RGBA": lambda: _save(_pattern("RGBA", s), "WEBP", lossless=True),
        "webp-animated": lambda: _save(_frames("RGB", 1)[0], "WEBP", save_all=True, append_images=_frames("RGB", 3)),
        "gif-animated-transparent": _gif_animated,
        "bmp-1": lambda: _save(_pattern("1", s), "BMP"),
        "bmp-P": lambda: _save(_pattern("P", s), "BMP"),
        "bmp-RGBA": lambda: _save(_pattern("RGBA", s), "BMP"),
        "tiff-CMYK": lambda: _save(_pattern("CMYK", s), "TIFF"),
        "tiff-I16": lambda: _save(_pattern("I;16", s), "TIFF"),
        "tiff-F": lambda: _save(_pattern("F", s), "TIFF"),
        "tiff-I32": lambda: _save(_pattern("I", s), "TIFF"),
        "tiff-group4": lambda: _save(_pattern("1", s), "TIFF", compression="group4"),
        "tiff-lzw-RGBA": lambda: _save(_pattern("RGBA", s), "TIFF", compression="tiff_lzw"),
        "tiff-deflate-LA": lambda: _save(_pattern("LA", s), "TIFF", compression="tiff_adobe_deflate"),
        "tiff-jpeg": lambda: _save(_pattern("RGB", s), "TIFF", compression="jpeg"),
        "tiff-multipage": lambda: _save(_frames("RGB", 1)[0], "TIFF", save_all=True, append_images=_frames("L", 2)),
        "tiff-exif-rot270": lambda: _save(_pattern("RGB", s), "TIFF", exif=_exif(8)),
        # real decompression bombs: a few KiB that inflate to 4 M pixels (allowed) / 9 M pixels (refused)
        "bomb-png-2048": lambda: _save(Image.new("L", (2048, 2048), 255), "PNG", optimize=True),
        "bomb-png-3000": lambda: _save(Image.new("1", (3000, 3000), 1), "PNG", optimize=True),
    })
    out.update({f"jpeg-exif-{o}": functools.partial(lambda o: _save(_pattern("RGB", s), "JPEG", exif=_exif(o)), o)
                for o in range(1, 9)})
    return out


@functools.lru_cache(maxsize=None)
def seeds() -> dict[str, bytes]:
    """Every valid seed image, built once."""
    return {name: build() for name, build in _seed_builders().items()}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declared(w: int, h: int, depth: int = 8, color: int = 0, body: bytes = b"\0" * 64) -> bytes:
    """A PNG whose IHDR (valid CRC) declares ``w``×``h`` over a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", w & 0xFFFFFFFF, h & 0xFFFFFFFF, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(body)) + _chunk(b"IEND", b"")


def gif_declared(w: int, h: int) -> bytes:
    """A GIF whose screen and first frame declare ``w``×``h`` (16-bit fields) over a few LZW bytes."""
    w, h = w & 0xFFFF, h & 0xFFFF
    head = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame + b"\x3b"


def bmp_declared(w: int, h: int) -> bytes:
    """A 24-bit BMP whose header declares ``w``×``h`` (signed 32-bit fields) over 64 pixel bytes."""
    info = struct.pack("<IiiHHIIiiII", 40, _i32(w), _i32(h), 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + info + b"\x80" * 64


def tiff_declared(w: int, h: int, strip_offsets_type: int = 4) -> bytes:
    """A little-endian 8-bit grey TIFF whose IFD declares ``w``×``h`` over one 64-byte strip; its StripOffsets
    entry has TIFF type ``strip_offsets_type`` (4 LONG; 5 RATIONAL is what a one-bit flip made of it)."""
    entries = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, strip_offsets_type, 8),
               (277, 3, 1), (278, 4, h), (279, 4, 64)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, typ, 1) + (struct.pack("<HH", v & 0xFFFF, 0) if typ == 3 else struct.pack("<I", v & 0xFFFFFFFF))
        for tag, typ, v in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8 + 64) + b"\x80" * 64 + ifd


def jpeg_declared(w: int, h: int) -> bytes:
    """The RGB seed JPEG with its SOF frame header rewritten to ``w``×``h`` (16-bit fields)."""
    data = bytearray(seeds()["jpeg-RGB"])
    at = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
    data[at + 5:at + 9] = struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
    return bytes(data)


def webp_declared(w: int, h: int) -> bytes:
    """A VP8X WebP whose canvas declares ``w``×``h`` (24-bit fields, stored minus one) with no frame."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + ((w - 1) & 0xFFFFFF).to_bytes(3, "little") \
        + ((h - 1) & 0xFFFFFF).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 2**32 if v >= 2**31 else v


DECLARED: dict[str, Callable[[int, int], bytes]] = {
    "png": png_declared, "gif": gif_declared, "bmp": bmp_declared, "tiff": tiff_declared,
    "jpeg": jpeg_declared, "webp": webp_declared,
}


def _side(rng: random.Random) -> int:
    return rng.choice(EDGE_SIDES) if rng.random() < 0.6 else rng.randrange(2**32)


def _mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    """``data`` truncated, bit-flipped or with a slice overwritten by random bytes."""
    if kind == "truncated":
        return data[:rng.randrange(len(data))]
    out = bytearray(data)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    at = rng.randrange(len(out))
    out[at:at + rng.randint(1, 16)] = rng.randbytes(rng.randint(1, 16))
    return bytes(out)


KINDS = ("random", "signature", "seed", "truncated", "bitflip", "overwrite", "declared")


def hostile_input(rng: random.Random) -> bytes:
    """One hostile input drawn from ``rng`` (see the module docstring)."""
    kind = rng.choice(KINDS)
    if kind == "random":
        return rng.randbytes(rng.randint(0, 300))
    if kind == "signature":
        return rng.choice(SIGNATURES) + rng.randbytes(rng.randint(0, 300))
    if kind == "declared":
        return DECLARED[rng.choice(sorted(DECLARED))](_side(rng), _side(rng))
    seed = seeds()[rng.choice(sorted(seeds()))]
    return seed if kind == "seed" else _mutate(seed, kind, rng)


NAME = "image[0]"
MAX_SECONDS = 2.0
MiB = 1024 * 1024


def outcome(data: bytes) -> tuple[str, float]:
    """("result" | "refused", seconds) of one input through the served decoding; fails on anything else:
    another exception, a message that does not name the input, an out-of-range result, over 2 s."""
    t0 = time.perf_counter()
    try:
        out = image_bytes_to_input(data, name=NAME)
    except BadImageError as err:
        kind, message = "refused", str(err)
        assert message.startswith(f"{NAME}: ") and len(message) > len(NAME) + 10, message
    else:
        kind = "result"
        assert out.shape == (3, 16, 64) and out.dtype == np.float32
        assert np.isfinite(out).all() and 0.0 <= out.min() <= out.max() <= 1.0
    seconds = time.perf_counter() - t0
    assert seconds < MAX_SECONDS, f"{seconds:.2f} s for a {len(data)}-byte input"
    return kind, seconds


def _fuzz(examples: int) -> dict[str, float]:
    """Run ``examples`` Hypothesis-drawn inputs through ``outcome``; the tally of what they ended in."""
    seeds()  # built once, outside the per-input timing
    tally = {"result": 0, "refused": 0, "max_seconds": 0.0}

    @settings(max_examples=examples, deadline=int(MAX_SECONDS * 1000), derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.randoms(use_true_random=False))
    def one(rng: random.Random) -> None:
        kind, seconds = outcome(hostile_input(rng))
        tally[kind] += 1
        tally["max_seconds"] = max(tally["max_seconds"], seconds)

    one()
    print(f"\nfuzzed {examples}: {tally}")
    return tally


@pytest.mark.timeout(300)
def test_5000_fuzzed_inputs_end_in_a_result_or_a_bad_image_error() -> None:
    tally = _fuzz(5000)
    assert tally["result"] + tally["refused"] >= 5000
    assert tally["result"] >= 500 and tally["refused"] >= 2500  # both outcomes are exercised


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_50000_fuzzed_inputs() -> None:
    tally = _fuzz(50000)
    assert tally["result"] + tally["refused"] >= 50000


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in KiB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def _reset_peak_rss() -> bool:
    """Reset VmHWM (the peak RSS) to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.timeout(300)
def test_no_memory_growth_and_no_bomb_allocation() -> None:
    """1,500+ inputs decoded 3 times after a warm-up: no Python objects left behind (tracemalloc), RSS flat,
    and the peak RSS while decoding stays far below what a bomb's declared size would allocate."""
    inputs = nastiest(500) + [hostile_input(random.Random(i)) for i in range(1000)]
    for data in inputs:  # warm-up: plugin imports, Pillow's block cache, numpy buffers
        outcome(data)
    gc.collect()
    rss_before = _status_kib("VmRSS") * 1024
    peak_measured = _reset_peak_rss()
    tracemalloc.start()
    try:
        for _ in range(3):
            for data in inputs:
                outcome(data)
        gc.collect()
        traced, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = _status_kib("VmRSS") * 1024 - rss_before
    peak_growth = _status_kib("VmHWM") * 1024 - rss_before
    print(f"\nmemory over 3 x {len(inputs)} inputs: traced {traced / MiB:.2f} MiB, RSS growth {rss_growth / MiB:.1f} MiB,"
          f" peak RSS over start {peak_growth / MiB:.1f} MiB" + ("" if peak_measured else " (peak not resettable)"))
    assert traced < 1 * MiB
    assert rss_growth < 32 * MiB
    if peak_measured:
        assert peak_growth < 256 * MiB  # the largest allowed image (2048² RGBA) needs ~16 MiB per copy


# --- the inputs the fuzzing found, kept as explicit cases -------------------------------------------------

HUGE = 2**16 - 1  # every format's size fields hold it; 65535² px is over Pillow's decompression-bomb limit


@pytest.mark.parametrize("fmt", sorted(DECLARED))
def test_bomb_header_is_refused_with_a_message(fmt: str) -> None:
    """Found: a header declaring over 2 × Image.MAX_IMAGE_PIXELS raised DecompressionBombError out of the
    header check instead of BadImageError."""
    with pytest.raises(BadImageError, match=r"^image\[0\]: "):
        image_bytes_to_input(DECLARED[fmt](HUGE, HUGE), name=NAME)


def test_png_20000_square_over_a_tiny_body_is_refused() -> None:
    with pytest.raises(BadImageError, match="over the decoder's limit"):
        image_bytes_to_input(png_declared(20000, 20000), name=NAME)


def test_tiff_with_rational_strip_offsets_is_refused() -> None:
    """Found (one bit flipped in a TIFF's StripOffsets type, LONG → RATIONAL): TypeError out of ``load``."""
    assert outcome(tiff_declared(8, 8))[0] == "result"
    with pytest.raises(BadImageError, match=r"image\[0\]: not a decodable image \(TypeError"):
        image_bytes_to_input(tiff_declared(8, 8, strip_offsets_type=5), name=NAME)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    """Found: EXIF orientation was ignored, so a phone photo of a word came out rotated or mirrored."""
    data = seeds()[f"jpeg-exif-{orientation}"]
    with Image.open(io.BytesIO(data)) as raw:
        expected = ImageOps.exif_transpose(raw.convert("RGB"))
    got = decode_image(data)
    assert got.size == ((12, 24) if orientation >= 5 else (24, 12))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.parametrize("name", ["png-exif-rot90", "tiff-exif-rot270"])
def test_exif_orientation_in_png_and_tiff(name: str) -> None:
    """Both store 24×12 px with a quarter-turn orientation (Pillow's TIFF plugin applies it on load itself
    and drops the tag, so it is not turned twice)."""
    assert decode_image(seeds()[name]).size == (12, 24)


def test_unreadable_exif_is_ignored() -> None:
    assert decode_image(seeds()["jpeg-bad-exif"]).size == (24, 12)


@pytest.mark.parametrize("fmt,mode,values,expected", [
    ("PNG", "I;16", np.array([[0, 30000, 65535]] * 4, dtype=np.uint16), [0, 117, 255]),
    ("TIFF", "I;16", np.array([[0, 30000, 65535]] * 4, dtype=np.uint16), [0, 117, 255]),
    ("TIFF", "I", np.array([[0, 30000, 65535]] * 4, dtype=np.int32), [0, 117, 255]),
    ("TIFF", "I", np.array([[0, 100, 255]] * 4, dtype=np.int32), [0, 100, 255]),
    ("TIFF", "F", np.array([[0.0, 0.5, 1.0]] * 4, dtype=np.float32), [0, 128, 255]),
    ("TIFF", "F", np.array([[np.nan, 100.0, 300.0]] * 4, dtype=np.float32), [0, 100, 255]),
], ids=["png-16bit", "tiff-16bit", "tiff-int32-16bit-range", "tiff-int32-8bit-range", "tiff-float-unit", "tiff-float-nan"])
def test_high_bit_depth_grey_is_scaled_to_8_bits(fmt: str, mode: str, values: np.ndarray, expected: list[int]) -> None:
    """Found: 16-bit grey was clipped at 255, so anything above 0.4 % of full scale came out white."""
    img = Image.fromarray(values)
    assert img.mode == mode
    got = np.asarray(decode_image(_save(img, fmt)))
    assert got.shape == (4, 3, 3) and (got[0, :, 0] == expected).all() and (got[..., 0] == got[..., 2]).all()


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "TGA", "PCX", "SGI"])
def test_formats_outside_the_allow_list_are_refused(fmt: str) -> None:
    data = _save(_pattern("RGB", (24, 12)), fmt)
    with pytest.raises(BadImageError, match="not a decodable image"):
        image_bytes_to_input(data, name=NAME)


# --- the real local server --------------------------------------------------------------------------------

def nastiest(n: int) -> list[bytes]:
    """The explicit cases, every seed, every format's header at the edge sizes, then drawn inputs: ``n`` in all."""
    found = [png_declared(20000, 20000), tiff_declared(8, 8, strip_offsets_type=5)]
    declared = [build(w, h) for build in DECLARED.values() for w, h in ((HUGE, HUGE), (2**31, 1), (0, 0), (3073, 4))]
    out = found + list(seeds().values()) + declared
    i = 0
    while len(out) < n:
        out.append(hostile_input(random.Random(10**6 + i)))
        i += 1
    return out[:n]


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_server_answers_nasty_inputs_then_a_good_one(triton: Any, served_model: Any, protocol: str) -> None:
    """150 of the nastiest inputs, one request each: a result where the local decoding gives one, else 400 /
    INVALID_ARGUMENT with a message naming the image; then a real crop reads as in-process."""
    from tritonclient.utils import InferenceServerException

    from lowres_ocr.serving.client import OcrClient

    code = "400" if protocol == "http" else "StatusCode.INVALID_ARGUMENT"
    url = triton.http_url if protocol == "http" else triton.grpc_url
    answers = {"result": 0, "refused": 0}
    with OcrClient(url, protocol, timeout=30) as client:
        for i, data in enumerate(nastiest(150)):
            expected, _ = outcome(data)
            try:
                prediction = client.predict(data)
            except InferenceServerException as err:
                assert err.status() == code and err.message().count(f"{NAME}: ") >= 1, (i, err.status(), err.message())
                got = "refused"
            else:
                assert isinstance(prediction.text, str) and 0.0 <= prediction.confidence <= 1.0
                got = "result"
            assert got == expected, f"input {i}: server {got}, local {expected}"
            answers[got] += 1
        assert client.predict(served_model.crops[0][1]).text == served_model.texts[0]
    print(f"\n{protocol}: {answers}")
    assert answers["result"] >= 20 and answers["refused"] >= 50
