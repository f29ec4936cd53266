"""Reading the verifier's log: find the failing instruction and say what went wrong in one place.

The kernel's log is long and ends with the reason; users need the reason, the instruction that
triggered it (disassembled, with the Python source line when we know it) and the full log on
request (``VerifierError.log``).
"""

from __future__ import annotations

import re
from typing import Callable, List, Mapping, NamedTuple, Optional

_INSN_LINE = re.compile(r"^(\d+): \(([0-9a-f]{2})\)")
_NOISE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|mark_read|"
    r"-- BEGIN|-- END|Func#\d+|func#\d+|\s*$)"
)
_POISON_CALL = re.compile(r"invalid func unknown#(\d+)")

CORE_POISON = 0xBAD2310


class LogSummary(NamedTuple):
    """What the log says: the failing instruction index (if any) and the reason lines."""

    insn: Optional[int]
    reason: List[str]
    omitted: int


def summarize(log: str) -> LogSummary:
    """Pick the last instruction the verifier looked at and the message lines after it."""
    lines = log.rstrip("\n").splitlines()
    last_insn: Optional[int] = None
    last_idx = -1
    for i, line in enumerate(lines):
        m = _INSN_LINE.match(line)
        if m:
            last_insn = int(m.group(1))
            last_idx = i
    tail = [ln for ln in lines[last_idx + 1 :] if not _NOISE.match(ln) and not ln.startswith(";")]
    if not tail:  # the reason may precede instruction dumps (BTF/func-info errors) or be all there is
        tail = [ln for ln in lines if not _NOISE.match(ln) and not _INSN_LINE.match(ln)][-3:]
    reason = tail[-4:]
    return LogSummary(last_insn, reason, max(0, len(lines) - len(reason)))


def describe(
    program: str,
    log: str,
    instruction_text: Optional[Callable[[int], str]] = None,
    poisoned: Optional[Mapping[int, str]] = None,
) -> str:
    """A short multi-line description of a rejection, for the exception message.

    *poisoned* maps the slot index of each instruction CO-RE poisoned to the explanation of
    the relocation that failed (:func:`ebpf.btf.core.poisoned_slots`): when the verifier
    stops at one, the message says which type and field could not be resolved.
    """
    s = summarize(log)
    if not log.strip():
        return f"program {program!r}: the kernel gave no verifier log"
    reason = "; ".join(r.strip() for r in s.reason) or "(no reason in the log)"
    m = _POISON_CALL.search(reason)
    if m and int(m.group(1)) == CORE_POISON:
        explanation = poisoned.get(s.insn) if poisoned and s.insn is not None else None
        if explanation is not None:
            reason = f"instruction {s.insn} was poisoned: {explanation}"
        else:
            reason = "the program reached an instruction poisoned by an unresolved CO-RE relocation"
    out = [f"program {program!r}: {reason}"]
    if s.insn is not None and instruction_text is not None:
        try:
            out.append(f"  at instruction {s.insn}: {instruction_text(s.insn)}")
        except (IndexError, KeyError):
            out.append(f"  at instruction {s.insn}")
    return "\n".join(out)  # the whole log is the exception's .log; where to show it is the caller's choice
