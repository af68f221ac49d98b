"""A CJK font for matplotlib, so Chinese labels on static maps and charts are not empty boxes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager

# Debian's fonts-noto-cjk first (installed by scripts/bootstrap.sh), then other common CJK families.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Serif CJK SC", "Source Han Sans SC",
                "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei",
                "PingFang SC", "Droid Sans Fallback")
_CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "msyh", "simhei", "pingfang",
                   "droidsansfallback")


def _installed() -> str | None:
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in CJK_FAMILIES if f in names), None)


@lru_cache
def cjk_family() -> str | None:
    """The first installed CJK font family matplotlib can use, or None when there is none."""
    found = _installed()
    if found is None:
        # matplotlib's font cache may predate the font package: register the files it has not seen.
        for path in font_manager.findSystemFonts():
            if any(h in Path(path).name.lower() for h in _CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError):
                    continue
        found = _installed()
    return found


def use_cjk_font() -> str | None:
    """Make matplotlib draw Chinese text with an installed CJK font; returns the family used."""
    family = cjk_family()
    if family:
        matplotlib.rcParams["font.sans-serif"] = [family, *matplotlib.rcParams["font.sans-serif"]]
        matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False
    return family
