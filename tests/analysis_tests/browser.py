"""An HTML report as headless Chromium lays it out at 1,400 px: overflow and broken images."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter((i) => !i.complete || i.naturalWidth === 0).length;
  const wide = document.documentElement.scrollWidth - window.innerWidth;
  const over = [...document.querySelectorAll("table, img, pre")].filter(
    (e) => e.getBoundingClientRect().right > window.innerWidth + 1).length;
  document.title = `probe images=${images.length} broken=${broken} overflow=${wide} outside=${over}`;
});
</script>"""


def browser_layout(page: Path, work: Path, *, width: int = 1400) -> dict[str, int]:
    """``images``, ``broken`` images, page ``overflow`` in px (<= 0: none) and elements ``outside`` the viewport.

    The page must be static (no script of its own): the probe script is the only one run.
    """
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text, f"{page} runs scripts; a report must be self-contained and static"
    probe = work / f"{page.stem}-probe.html"
    probe.write_text(text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    run = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--window-size={width},1000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"<title>probe images=(\d+) broken=(\d+) overflow=(-?\d+) outside=(\d+)</title>", run.stdout)
    assert found, run.stderr[-2000:]
    return dict(zip(("images", "broken", "overflow", "outside"), (int(g) for g in found.groups())))
