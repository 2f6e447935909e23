"""Write the small sample media that ``/api/import-example`` points to (``static/samples/*``).

Run from the repository root: ``python scripts/make_sample_media.py``. The files are made
here from nothing (a drawn picture, a synthesised tone, a generated page and video) and
committed under ``server/static/samples/``; the server only serves them. Needs Pillow, and
ffmpeg on PATH for the MP4.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "server" / "static" / "samples"


def picture(size: tuple[int, int]) -> Image.Image:
    """A sky, a meadow and a sun: something to draw boxes on."""
    image = Image.new("RGB", size, (135, 190, 235))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, height * 2 // 3, width, height), fill=(90, 160, 80))
    draw.ellipse((width // 8, height // 8, width // 3, height // 3 + height // 8), fill="gold")
    draw.rectangle((width // 2, height // 3, width * 3 // 4, height * 2 // 3), fill="firebrick")
    return image


def jpeg() -> bytes:
    out = io.BytesIO()
    picture((160, 120)).save(out, "JPEG", quality=70)
    return out.getvalue()


def pdf() -> bytes:
    out = io.BytesIO()
    picture((160, 120)).save(out, "PDF", resolution=72)
    return out.getvalue()


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A 440 Hz tone fading out, 8 kHz mono 16-bit."""
    frames = int(seconds * rate)
    samples = (
        int(12000 * (1 - i / frames) * math.sin(2 * math.pi * 440 * i / rate))
        for i in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


def headless_csv(rows: int = 100) -> bytes:
    """A time series without a header row: time, then two sine channels."""
    lines = (f"{i},{math.sin(i / 10):.5f},{math.cos(i / 10):.5f}\n" for i in range(rows))
    return "".join(lines).encode()


def mp4() -> bytes:
    """One second of a small moving square, H.264 (ffmpeg's own test source)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("ffmpeg is needed for the MP4 sample")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "sample.mp4"
        subprocess.run(
            [
                ffmpeg, "-loglevel", "error", "-f", "lavfi",
                "-i", "testsrc=size=96x64:rate=10:duration=1",
                "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryslow", "-crf", "40",
                "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact",
                "-flags:v", "+bitexact", str(target),
            ],
            check=True,
        )  # fmt: skip
        return target.read_bytes()


FILES = {
    "sample.jpg": jpeg,
    "game.wav": wav,
    "sample.pdf": pdf,
    "sample-task-sin-headless.csv": headless_csv,
    "opossum_snow.mp4": mp4,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in FILES.items():
        data = make()
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
