"""A CJK-capable font for Matplotlib, chosen the same way on every machine.

Matplotlib 3.5 (Rasa pins < 3.6) reads only the first face of a .ttc, so system "Noto Sans
CJK SC" is not usable; the pinned PyPI wheel `pylopdf-fonts-zh-cn` ships NotoSansSC-Regular.otf
(SIL OFL), which we register with `fontManager.addfont`. Debian's WenQuanYi Micro Hei is the
fallback when the wheel is missing. `missing_glyphs` is how tests prove no label renders as a box.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from kefu.errors import ConfigError

SYSTEM_FALLBACKS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)


def cjk_font_path() -> Path:
    """The bundled Noto Sans SC from the pinned wheel, else a system WenQuanYi font."""
    spec = importlib.util.find_spec("pylopdf_fonts_zh_cn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "NotoSansSC-Regular.otf"
        if path.is_file():
            return path
    for path in SYSTEM_FALLBACKS:
        if path.is_file():
            return path
    raise ConfigError("no CJK font: install the pinned pylopdf-fonts-zh-cn wheel (make setup) or fonts-wqy-microhei")


@lru_cache(maxsize=1)
def configure_matplotlib() -> str:
    """Register the CJK font, make it the default family and return its family name."""
    import matplotlib  # lazy: the Agg backend must be chosen before anything imports pyplot

    matplotlib.use("Agg")
    from matplotlib import font_manager, rcParams  # lazy: (same reason)

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
    rcParams["axes.unicode_minus"] = False  # the font's U+2212 may be missing: use ASCII '-'
    return name


def missing_glyphs(texts: Iterable[str], font_path: Path | None = None) -> set[str]:
    """Characters of `texts` that the CJK font has no glyph for (they would render as boxes)."""
    from matplotlib.ft2font import FT2Font  # lazy: matplotlib only where charts are drawn

    font = FT2Font(str(font_path or cjk_font_path()))
    missing = set()
    for text in texts:
        for char in text:
            if char.isspace() or char in missing:
                continue
            if font.get_char_index(ord(char)) == 0:
                missing.add(char)
    return missing
