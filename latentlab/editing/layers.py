"""Layer ranges: which W+ rows an edit touches, written once and mapped onto any generator.

Specs (comma-separated items, combined as a union):

* **Reference rows** ``9-18``, ``3``, ``0-5,9``: rows of StyleGAN2-1024's 18-row W+ layout, the layout
  in which published ranges are written. ``a-b`` means rows ``a .. b-1`` (Python slice semantics:
  ``9-18`` is rows 9..17, the last nine); a single number is that one row. On another layout the
  rows are mapped by resolution: the reference rows -> the set of feature resolutions they control in
  StyleGAN2-1024 (row 0: 4 px; 1-2: 8; 3-4: 16; 5-6: 32; 7-8: 64; 9-10: 128; 11-12: 256;
  13-14: 512; 15-17: 1024) -> the target model's rows whose ``G.ws_resolutions`` are in that set
  (so mapping works per resolution level: reference rows 0-6 select all of a model's 32 px rows). On a
  StyleGAN2-1024 itself the rows are used as written.
  Resolutions above the target's finest row resolution are clamped to it (a 256 px StyleGAN2's
  "1024 px" rows are its 256 px rows; MobileStyleGAN-1024's finest styled rows are at 512 px,
  its last block predicts the 1024 px image as wavelets).
* **Names**: ``coarse`` (4-8 px), ``middle`` (16-32 px), ``fine`` (64-1024 px), ``all``.
* **Resolutions** ``64-1024``, ``16px``, ``4-8px``: rows whose resolution lies in the inclusive
  range (clamped as above). A number is read as a resolution when it carries ``px`` or exceeds 18
  and every number is a power of two (``64-1024``; but ``4-8`` is reference rows 4..7: write ``4-8px``).
* **Raw rows** of the target model: the prefix ``rows:`` (``rows:19-23``), or ``rows_exact=True``
  (``--rows-exact``) for every item; same slice semantics, no mapping.

Every bad spec raises a one-line :class:`~latentlab.errors.LatentlabError`.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..errors import LatentlabError

#: Rows of the reference layout (StyleGAN2 at 1024 px).
REFERENCE_NUM_WS = 18
#: Feature resolution of each of the 18 reference rows.
REFERENCE_RESOLUTIONS: tuple[int, ...] = (4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512,
                                     1024, 1024, 1024)
#: Named resolution bands (inclusive, px).
NAMED_BANDS: dict[str, tuple[int, int]] = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1024)}
#: The default ranges per edit (18-row layout, slice semantics).
DEFAULT_RANGES: dict[str, str] = {"style": "9-18", "smile": "0-5", "age": "0-9", "pose": "0-6"}

SPEC_HELP = ("Layer range: reference rows of StyleGAN2-1024's 18-row layout ('a-b' = rows a..b-1, e.g. 9-18, "
             "0-5,9), names (coarse, middle, fine, all), resolutions (64-1024, 16px), or this model's own "
             "rows with the prefix rows: (rows:19-23). Reference rows are mapped to other layouts by resolution.")

_ITEM = re.compile(r"^(\d+)(px)?(?:-(\d+)(px)?)?$")


def _resolutions_of(G_or_resolutions: "object | Sequence[int]") -> list[int]:
    res = getattr(G_or_resolutions, "ws_resolutions", G_or_resolutions)
    try:
        out = [int(r) for r in res]  # type: ignore[union-attr]
    except TypeError:
        raise LatentlabError("layer ranges need a generator or its list of W+ row resolutions") from None
    if not out:
        raise LatentlabError("this generator reports no W+ rows")
    return out


def _is_pow2(v: int) -> bool:
    return v >= 4 and (v & (v - 1)) == 0


def _rows_in_band(resolutions: list[int], lo: int, hi: int) -> list[int]:
    top = max(resolutions)
    lo_c, hi_c = min(lo, top), min(hi, top)
    return [i for i, r in enumerate(resolutions) if lo_c <= r <= hi_c]


def reference_rows_to_rows(reference_rows: Sequence[int], G_or_resolutions: "object | Sequence[int]") -> list[int]:
    """Map rows of the 18-row StyleGAN2-1024 layout to rows of a target layout by resolution.

    reference_rows: indices in [0, 18). Returns sorted target rows whose resolution is one of the reference
    rows' resolutions (each clamped to the target's finest row resolution); on the reference
    layout itself (18 rows, StyleGAN2-1024) the rows are returned as given.
    """
    resolutions = _resolutions_of(G_or_resolutions)
    top = max(resolutions)
    bad = [r for r in reference_rows if not 0 <= int(r) < REFERENCE_NUM_WS]
    if bad:
        raise LatentlabError(f"reference row {bad[0]} is outside the {REFERENCE_NUM_WS}-row StyleGAN2-1024 layout (0..17)")
    if tuple(resolutions) == REFERENCE_RESOLUTIONS:  # the reference layout itself: rows as written
        return sorted({int(r) for r in reference_rows})
    wanted = {min(REFERENCE_RESOLUTIONS[int(r)], top) for r in reference_rows}
    return [i for i, r in enumerate(resolutions) if r in wanted]


def _parse_item(item: str, spec: str, resolutions: list[int], exact: bool) -> list[int]:
    num_ws = len(resolutions)
    low = item.lower()
    if low == "all":
        return list(range(num_ws))
    if low in NAMED_BANDS:
        return _rows_in_band(resolutions, *NAMED_BANDS[low])
    m = _ITEM.match(low)
    if m is None:
        raise LatentlabError(f"bad layer range {spec!r}: {item!r} is not a row range (9-18), a name "
                             f"({', '.join([*NAMED_BANDS, 'all'])}) or a resolution range (64-1024, 16px)")
    a, a_px, b, b_px = m.group(1), m.group(2), m.group(3), m.group(4)
    lo = int(a)
    hi = int(b) if b is not None else None
    nums = [lo] if hi is None else [lo, hi]
    is_res = bool(a_px or b_px) or (not exact and max(nums) > REFERENCE_NUM_WS and all(map(_is_pow2, nums)))
    if is_res:
        hi = lo if hi is None else hi
        for v in (lo, hi):
            if not _is_pow2(v):
                raise LatentlabError(f"bad layer range {spec!r}: {v} px is not a power-of-two resolution >= 4")
        if lo > hi:
            raise LatentlabError(f"bad layer range {spec!r}: resolutions {lo}-{hi} are in the wrong order")
        rows = _rows_in_band(resolutions, lo, hi)
        if not rows:
            raise LatentlabError(f"layer range {spec!r} selects no rows of this model "
                                 f"(row resolutions {min(resolutions)}-{max(resolutions)} px)")
        return rows
    limit = num_ws if exact else REFERENCE_NUM_WS
    where = f"this model's {num_ws} W+ rows" if exact else \
        f"the {REFERENCE_NUM_WS}-row StyleGAN2-1024 layout (use rows: for this model's own {num_ws} rows)"
    if hi is None:
        if lo >= limit:
            raise LatentlabError(f"layer range {spec!r}: row {lo} is outside {where}; rows are 0..{limit - 1}")
        span = [lo]
    else:
        if lo >= hi:
            raise LatentlabError(f"layer range {spec!r}: {lo}-{hi} is empty ('a-b' means rows a..b-1, "
                                 f"so b must be greater than a)")
        if hi > limit:
            raise LatentlabError(f"layer range {spec!r}: {lo}-{hi} is outside {where} "
                                 f"('a-b' means rows a..b-1, b <= {limit})")
        span = list(range(lo, hi))
    return span if exact else reference_rows_to_rows(span, resolutions)


def parse_layers(spec: str, G_or_resolutions: "object | Sequence[int]", *, rows_exact: bool = False) -> list[int]:
    """Resolve a layer-range spec (see the module doc) to sorted W+ row indices of a generator.

    G_or_resolutions: a Generator (its ``ws_resolutions`` are used) or the list itself.
    rows_exact: read bare numbers as the target model's own rows (as the ``rows:`` prefix does).
    """
    resolutions = _resolutions_of(G_or_resolutions)
    if not isinstance(spec, str) or not spec.strip():
        raise LatentlabError("empty layer range (use e.g. 9-18, coarse, 64-1024 or all)")
    text = spec.strip().replace(" ", "")
    exact = rows_exact
    if text.lower().startswith("rows:"):
        exact, text = True, text[len("rows:"):]
    rows: set[int] = set()
    for item in text.split(","):
        if not item:
            raise LatentlabError(f"bad layer range {spec!r}: empty item")
        rows.update(_parse_item(item, spec, resolutions, exact))
    if not rows:
        raise LatentlabError(f"layer range {spec!r} selects no rows of this model")
    return sorted(rows)


def format_rows(rows: Sequence[int]) -> str:
    """Sorted rows as a ``rows:`` spec with slice semantics, e.g. [0,1,2,5] -> ``rows:0-3,5``."""
    rows = sorted(set(int(r) for r in rows))
    parts: list[str] = []
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
            j += 1
        parts.append(str(rows[i]) if i == j else f"{rows[i]}-{rows[j] + 1}")
        i = j + 1
    return "rows:" + ",".join(parts)


def describe_rows(rows: Sequence[int], G_or_resolutions: "object | Sequence[int]") -> str:
    """Human summary: ``rows:0-7 (4-32 px)``."""
    resolutions = _resolutions_of(G_or_resolutions)
    res = sorted({resolutions[r] for r in rows})
    band = f"{res[0]} px" if len(res) == 1 else f"{res[0]}-{res[-1]} px"
    return f"{format_rows(rows)} ({band})"


def layer_table(G_or_resolutions: "object | Sequence[int]") -> list[dict[str, object]]:
    """The mapping of every reference row, named band and default range onto this layout (JSON-able)."""
    resolutions = _resolutions_of(G_or_resolutions)
    out: list[dict[str, object]] = []
    for i in range(REFERENCE_NUM_WS):
        rows = reference_rows_to_rows([i], resolutions)
        out.append({"spec": str(i), "kind": "reference row", "reference_resolution": REFERENCE_RESOLUTIONS[i], "rows": rows})
    for name in (*NAMED_BANDS, "all"):
        out.append({"spec": name, "kind": "name", "rows": parse_layers(name, resolutions)})
    for name, spec in DEFAULT_RANGES.items():
        out.append({"spec": spec, "kind": f"default {name}", "rows": parse_layers(spec, resolutions)})
    return out


def format_layer_table(G_or_resolutions: "object | Sequence[int]") -> str:
    """Text table of :func:`layer_table` for ``latentlab models info``."""
    resolutions = _resolutions_of(G_or_resolutions)
    lines = [f"Layer ranges -> rows of this model ({len(resolutions)} W+ rows). Reference rows refer to "
             f"StyleGAN2-1024's 18 rows; 'a-b' means rows a..b-1; mapped by resolution:",
             "  SPEC        WHAT          MAPS TO"]
    for entry in layer_table(resolutions):
        what = (f"reference {entry['reference_resolution']} px" if entry["kind"] == "reference row" else str(entry["kind"]))
        rows = entry["rows"]
        lines.append(f"  {str(entry['spec']):<10}  {what:<12}  {describe_rows(rows, resolutions)}")  # type: ignore[arg-type]
    return "\n".join(lines)


__all__ = ["NAMED_BANDS", "REFERENCE_NUM_WS", "DEFAULT_RANGES", "REFERENCE_RESOLUTIONS", "SPEC_HELP", "describe_rows",
           "format_layer_table", "format_rows", "layer_table", "parse_layers", "reference_rows_to_rows"]
