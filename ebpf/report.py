"""Output shared by the tools: BCC's histograms byte for byte, per-key sections, JSON lines.

Users compare our tools with BCC's by eye and by script, so the drawing follows BCC's Python
``print_log2_hist``/``print_linear_hist`` exactly (widths, the 40-star bar, the ``+`` when a
value exceeds the scale, the wider layout when the top slot is above 32, ``strip_leading_zero``)
and ``json_hist`` builds BCC's ``print_json_hist`` object.

Slots follow BCC: a log2 slot ``i`` (``i >= 1``) counts values in ``[2**(i-1), 2**i - 1]``
(slot 1 is printed as ``0 -> 1``): a program computes it as ``L.log2l(v) + 1`` for
``v > 0`` (``L.log2l`` is ``floor(log2(v))``, libbpf-tools' slot, which is BCC's minus one).
Output is written as soon as it is formed, with a flush,
so that a pipe or a file sees each interval at once.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

STARS_MAX = 40
LOG2_SLOTS = 65

Slots = Union[Sequence[int], Mapping[int, int]]


def _as_list(vals: Slots, size: int) -> List[int]:
    if isinstance(vals, Mapping):
        out = [0] * max(size, (max(vals) + 1) if vals else 0)
        for k, v in vals.items():
            out[int(k)] = int(v)
        return out
    return [int(v) for v in vals]


def stars(val: int, val_max: int, width: int) -> str:
    """The bar: ``width * val / val_max`` stars, the last one a ``+`` when val exceeds the max."""
    if val_max <= 0:
        return ""
    n = 0
    while n <= width * val / val_max - 1 and n <= width - 1:
        n += 1
    text = "*" * n
    if val > val_max:
        text = text[:-1] + "+"
    return text


def log2_hist_lines(vals: Slots, val_type: str = "value", strip_leading_zero: bool = False) -> List[str]:
    """BCC's log2 histogram as lines (without trailing newlines); empty when all slots are 0."""
    values = _as_list(vals, LOG2_SLOTS)
    idx_max = -1
    val_max = 0
    for i, v in enumerate(values):
        if v > 0:
            idx_max = i
        if v > val_max:
            val_max = v
    if idx_max <= 32:
        header = "     %-19s : count     distribution"
        body = "%10d -> %-10d : %-8d |%-*s|"
        width = STARS_MAX
    else:
        header = "               %-29s : count     distribution"
        body = "%20d -> %-20d : %-8d |%-*s|"
        width = STARS_MAX // 2
    lines = []
    if idx_max > 0:
        lines.append(header % val_type)
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        val = values[i]
        if strip_leading_zero:
            if not val:
                continue
            strip_leading_zero = False
        lines.append(body % (low, high, val, width, stars(val, val_max, width)))
    return lines


def linear_hist_lines(vals: Slots, val_type: str = "value", strip_leading_zero: bool = False) -> List[str]:
    """BCC's linear histogram (one row per integer slot from 0) as lines."""
    values = _as_list(vals, 0)
    idx_max = -1
    val_max = 0
    for i, v in enumerate(values):
        if v > 0:
            idx_max = i
        if v > val_max:
            val_max = v
    lines = []
    if idx_max >= 0:
        lines.append("     %-13s : count     distribution" % val_type)
    for i in range(0, idx_max + 1):
        val = values[i]
        if strip_leading_zero:
            if not val:
                continue
            strip_leading_zero = False
        lines.append("        %-10d : %-8d |%-*s|" % (i, val, STARS_MAX, stars(val, val_max, STARS_MAX)))
    return lines


def section_lines(
    sections: Mapping[Any, Slots],
    section_header: str,
    val_type: str = "value",
    *,
    linear: bool = False,
    section_print_fn: Optional[Callable[[Any], str]] = None,
    strip_leading_zero: bool = False,
) -> List[str]:
    """One histogram per key, each preceded by a blank line and ``header = key`` like BCC."""
    draw = linear_hist_lines if linear else log2_hist_lines
    lines: List[str] = []
    for key, vals in sections.items():
        label = section_print_fn(key) if section_print_fn else repr(key)
        lines.append("")
        lines.append(f"{section_header} = {label}")
        lines.extend(draw(vals, val_type, strip_leading_zero))
    return lines


def json_hist(vals: Slots, val_type: str = "value", section: Optional[tuple] = None,
              ts: Optional[str] = None) -> Dict[str, Any]:
    """BCC's ``print_json_hist`` object: log2 intervals up to the last non-zero slot."""
    values = _as_list(vals, LOG2_SLOTS)
    max_nonzero = 0
    for i, v in enumerate(values):
        if v:
            max_nonzero = i
    data = []
    index, prev = 1, 0
    for i in range(1, max_nonzero + 1):
        index *= 2
        data.append({"interval-start": prev, "interval-end": index - 1, "count": values[i]})
        prev = index
    out: Dict[str, Any] = {"ts": ts or time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type, "data": data}
    if section:
        out[section[0]] = section[1]
    return out


class Output:
    """Where a tool writes: text lines or JSON objects, flushed as soon as written.

    A closed pipe (``tool | head``) ends the tool quietly instead of with a traceback.
    """

    def __init__(self, stream: Optional[IO[str]] = None, json_mode: bool = False):
        self.stream = stream or sys.stdout
        self.json = json_mode

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def lines(self, texts: Iterable[str]) -> None:
        self.stream.write("".join(t + "\n" for t in texts))
        self.stream.flush()

    def record(self, obj: Mapping[str, Any]) -> None:
        """One JSON object on one line."""
        import json  # only --json output needs it

        self.stream.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
        self.stream.flush()


def format_row(widths: Sequence[int], values: Sequence[Any]) -> str:
    """Columns left-aligned to ``widths`` (negative width: right-aligned), space separated."""
    parts = []
    for w, v in zip(widths, values):
        parts.append(f"{v!s:<{w}}" if w >= 0 else f"{v!s:>{-w}}")
    return " ".join(parts).rstrip()
