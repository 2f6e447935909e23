"""Make the README's screenshots (docs/screenshots/*.png) from the browser tests' artifacts.

    LABELGRAPH_TEST_ARTIFACTS=/tmp/shots pytest tests/browser -q
    python scripts/readme_screenshots.py /tmp/shots

Each is scaled to 960 px wide and reduced to a 128-colour palette, to stay small in git.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHOTS = {
    "app-label-text.png": "app.png",
    "app-tasks.png": "tasks.png",
    "graphiql.png": "graphiql.png",
}
WIDTH = 960


def main(artifacts: Path) -> None:
    target = ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    for source, name in SHOTS.items():
        image = Image.open(artifacts / source).convert("RGB")
        height = round(image.height * WIDTH / image.width)
        small = image.resize((WIDTH, height), Image.Resampling.LANCZOS).quantize(colors=128)
        small.save(target / name, optimize=True)
        print(f"{target / name}: {(target / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
