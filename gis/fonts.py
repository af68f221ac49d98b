"""A CJK font for matplotlib, so Chinese labels on static maps and charts are not empty boxes."""

from __future__ import annotations

from functools import lru_cache

import matplotlib
from matplotlib import font_manager

# Debian's fonts-noto-cjk first (installed by scripts/bootstrap.sh), then other common CJK families.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Source Han Sans SC", "SimHei", "Microsoft YaHei")


@lru_cache
def cjk_family() -> str | None:
    """The first installed CJK font family, or None when there is none."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


def use_cjk_font() -> str | None:
    """Make matplotlib draw Chinese text with an installed CJK font; returns the family used."""
    family = cjk_family()
    if family:
        matplotlib.rcParams["font.sans-serif"] = [family, *matplotlib.rcParams["font.sans-serif"]]
        matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False
    return family
