"""opensnoop, execsnoop and exitsnoop: argument parsing and output lines in BCC's format.

Golden lines are what BCC's tools/*.py print for the same event (their printf formats applied
by hand, and the lines of BCC's *_example.txt where the format has not changed since).
"""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace
from typing import Any, List

import pytest

from ebpf.tools import execsnoop, exitsnoop, opensnoop


def open_event(**kw: Any) -> SimpleNamespace:
    base = dict(ts=5_000_000_000, id=(1956 << 32) | 1960, uid=1000, ret=9, flags=0o2000000, mode=0,
                comm=b"supervise", fname=b"supervise/status.new")
    base.update(kw)
    return SimpleNamespace(**base)


# --- opensnoop -----------------------------------------------------------------------------------


def test_opensnoop_default_header_and_line() -> None:
    args = opensnoop.parse_args([])
    assert opensnoop.header(args) == "PID    COMM               FD ERR PATH"
    fmt = opensnoop.Formatter(args)
    assert fmt.text(open_event()) == "1956   supervise           9   0 supervise/status.new"
    assert fmt.text(open_event(ret=-2, fname=b"/etc/missing")) == \
        "1956   supervise          -1   2 /etc/missing"


def test_opensnoop_timestamps_like_bccs_example() -> None:
    """tools/opensnoop_example.txt, ``./opensnoop -Tp 1956``."""
    args = opensnoop.parse_args(["-Tp", "1956"])
    assert args.pid == 1956 and args.timestamp
    assert opensnoop.header(args) == "TIME(s)       PID    COMM               FD ERR PATH"
    fmt = opensnoop.Formatter(args)
    assert fmt.text(open_event()) == "0.000000000   1956   supervise           9   0 supervise/status.new"
    assert fmt.text(open_event(ts=5_000_290_000)) == \
        "0.000290000   1956   supervise           9   0 supervise/status.new"


def test_opensnoop_uid_tid_and_extended_columns() -> None:
    args = opensnoop.parse_args(["-U", "-t", "1960", "-e"])
    assert opensnoop.header(args) == "UID   TID    COMM               FD ERR FLAGS    MODE PATH"
    fmt = opensnoop.Formatter(args)
    assert fmt.text(open_event()) == "1000  1960   supervise           9   0 02000000 n/a  supervise/status.new"
    created = open_event(flags=0o100 | 0o1, mode=0o640)
    assert fmt.text(created) == "1000  1960   supervise           9   0 00000101 0640 supervise/status.new"


def test_opensnoop_failed_only_and_name_filters() -> None:
    fmt = opensnoop.Formatter(opensnoop.parse_args(["-x", "-n", "perv"]))
    assert fmt.text(open_event()) is None  # succeeded
    assert fmt.text(open_event(ret=-13)) == "1956   supervise          -1  13 supervise/status.new"
    assert fmt.text(open_event(ret=-13, comm=b"cat")) is None  # name does not contain "perv"


def test_opensnoop_json_keys_follow_the_columns() -> None:
    fmt = opensnoop.Formatter(opensnoop.parse_args(["--json", "-T", "-U", "-e"]))
    rec = fmt.record(open_event(ret=-2))
    assert rec == {"time": 0.0, "uid": 1000, "pid": 1956, "comm": "supervise", "fd": -1, "err": 2,
                   "flags": 0o2000000, "mode": None, "path": "supervise/status.new"}
    json.dumps(rec)
    assert list(opensnoop.Formatter(opensnoop.parse_args(["-t", "5"])).record(open_event()) or {}) == \
        ["tid", "comm", "fd", "err", "path"]


def test_opensnoop_full_path_uses_the_process_cwd(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    fmt = opensnoop.Formatter(opensnoop.parse_args(["-F"]))
    ev = open_event(id=os.getpid() << 32, fname=b"rel/name")
    assert fmt.text(ev) is not None and (fmt.text(ev) or "").endswith(" " + os.getcwd().rstrip("/") + "/rel/name")
    gone = open_event(id=0x7FFFFFF0 << 32, fname=b"rel/name")  # no such process: stays relative
    assert (fmt.text(gone) or "").endswith(" rel/name")
    assert (fmt.text(open_event(fname=b"/abs")) or "").endswith(" /abs")


def test_opensnoop_arguments() -> None:
    args = opensnoop.parse_args(["-f", "O_WRONLY", "-f", "O_RDWR", "-d", "0.5", "-u", "0", "-b", "8"])
    assert args.flag_mask == 0o1 | 0o2
    assert args.duration == 0.5 and args.uid == 0 and args.buffer_pages == 8
    args = opensnoop.parse_args(["--exec", "ls", "-l", "/tmp"])
    assert args.exec == ["ls", "-l", "/tmp"]
    for bad in (["-f", "WRONLY"], ["-f", "O_NOPE"], ["-b", "3"], ["-p", "0"], ["-p", "x"], ["-d", "-1"],
                ["-p", "5", "--exec", "ls"], ["--exec"]):
        with pytest.raises(SystemExit) as info:
            opensnoop.parse_args(bad)
        assert info.value.code == 2, bad


def test_opensnoop_exit_program_is_compiled_once() -> None:
    coll = opensnoop.build(True, ["open", "openat", "openat2"])
    assert sorted(coll.programs) == ["enter_open", "enter_openat", "enter_openat2", "exit_open"]


# --- execsnoop -----------------------------------------------------------------------------------


def exec_event(args: List[bytes], count: int = -1, slots: int = 20, **kw: Any) -> SimpleNamespace:
    base = dict(pid=171318, ppid=133702, uid=1000, retval=0, cpu=1, comm=b"ls", pcomm=b"bash",
                args_count=len(args) if count < 0 else count, args=args + [b""] * (slots - len(args)))
    base.update(kw)
    return SimpleNamespace(**base)


def test_execsnoop_default_line() -> None:
    args = execsnoop.parse_args([])
    assert execsnoop.header(args) == "PCOMM            PID     PPID    RET ARGS"  # BCC 0.26, libbpf-tools
    fmt = execsnoop.Formatter(args, start=0)
    ev = exec_event([b"/bin/ls", b"--color=auto"])
    assert fmt.text(ev) == "ls               171318  133702    0 /bin/ls --color=auto"


def test_execsnoop_all_columns() -> None:
    args = execsnoop.parse_args(["-T", "-t", "-U", "-M", "-C", "-x", "-q"])
    assert execsnoop.header(args) == \
        "TIME     TIME(s) UID   PCOMM            PID     PPCOMM           PPID    CPU  RET ARGS"
    fmt = execsnoop.Formatter(args, start=100.0)
    now = time.mktime((2024, 1, 2, 14, 8, 23, 0, 0, -1)) + 0.25
    fmt.start = now - 2.849
    ev = exec_event([b"/bin/mount", b"-p", b'say "hi"'], retval=-2, comm=b"mount", pcomm=b"sh")
    assert fmt.text(ev, now=now) == ('14:08:23 2.849   1000  mount            171318  sh               133702  1    '
                                     ' -2 "/bin/mount" "-p" "say \\"hi\\""')


def test_execsnoop_failed_excluded_without_x_and_truncation() -> None:
    fmt = execsnoop.Formatter(execsnoop.parse_args([]), start=0)
    assert fmt.text(exec_event([b"/x"], retval=-13)) is None
    many = [b"a%d" % i for i in range(20)]
    line = fmt.text(exec_event(many, count=21)) or ""
    assert line.endswith(" a18 a19 ...")
    quoted = execsnoop.Formatter(execsnoop.parse_args(["-q"]), start=0).text(exec_event(many, count=21)) or ""
    assert quoted.endswith(' "a19" "..."')  # BCC quotes its "..." too
    assert (fmt.text(exec_event([b"/bin/echo", b"a\nb"])) or "").endswith(" /bin/echo a\\nb")


def test_execsnoop_name_and_line_regexes() -> None:
    fmt = execsnoop.Formatter(execsnoop.parse_args(["-n", "^mou", "-l", "testpkg"]), start=0)
    assert fmt.text(exec_event([b"/bin/mount", b"testpkg"], comm=b"mount")) is not None
    assert fmt.text(exec_event([b"/bin/mount", b"other"], comm=b"mount")) is None
    assert fmt.text(exec_event([b"/bin/ls", b"testpkg"])) is None


def test_execsnoop_unknown_parent_prints_question_mark() -> None:
    fmt = execsnoop.Formatter(execsnoop.parse_args([]), start=0)
    line = fmt.text(exec_event([b"/bin/ls"], pid=0x7FFFFFF0, ppid=0)) or ""
    assert line.startswith("ls               2147483632 ?       ")


def test_execsnoop_json() -> None:
    fmt = execsnoop.Formatter(execsnoop.parse_args(["--json", "-U", "-t"]), start=10.0)
    rec = fmt.record(exec_event([b"/bin/ls", b"-l"]), now=11.5)
    assert rec == {"time_s": 1.5, "uid": 1000, "pcomm": "ls", "pid": 171318, "ppid": 133702, "ret": 0,
                   "args": ["/bin/ls", "-l"]}
    rec = execsnoop.Formatter(execsnoop.parse_args(["--json", "-M"]), start=0).record(exec_event([b"/bin/ls"]))
    assert rec is not None and (rec["pcomm"], rec["ppcomm"]) == ("ls", "bash")
    rec = fmt.record(exec_event([b"/bin/ls"], count=2, slots=1))
    assert rec is not None and rec["args"] == ["/bin/ls", "..."]
    assert fmt.record(exec_event([b"/x"], retval=-2)) is None


def test_execsnoop_arguments() -> None:
    import pwd

    root = pwd.getpwuid(0).pw_name
    assert execsnoop.parse_args(["-u", root]).uid == 0
    assert execsnoop.parse_args(["-u", "1000"]).uid == 1000
    assert execsnoop.parse_args(["--max-args", "5"]).max_args == 5
    assert execsnoop.parse_args([]).max_args == 20
    for bad in (["-u", "no-such-user-xyz"], ["--max-args", "0"], ["--max-args", "999"], ["-n", "("], ["-P", "0"]):
        with pytest.raises(SystemExit) as info:
            execsnoop.parse_args(bad)
        assert info.value.code == 2, bad


def test_execsnoop_event_size_follows_max_args() -> None:
    small, large = execsnoop.event_type(5), execsnoop.event_type(60)
    assert large.size() - small.size() == 55 * execsnoop.ARGSIZE
    assert execsnoop.event_type(5) is small
    raw = bytearray(small.size())
    ev = small.decode(bytes(raw))
    assert ev.args == [b""] * 5


# --- exitsnoop -----------------------------------------------------------------------------------


def exit_event(**kw: Any) -> SimpleNamespace:
    base = dict(start_time=1_000_000_000, exit_time=2_650_000_000, pid=19003, tid=19003, ppid=17656,
                exit_code=0, sig_info=0, task=b"bash")
    base.update(kw)
    return SimpleNamespace(**base)


def test_exitsnoop_lines() -> None:
    args = exitsnoop.parse_args([])
    assert exitsnoop.header(args) == "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE "
    fmt = exitsnoop.Formatter(args)
    assert fmt.text(exit_event()) == "bash             19003   17656   19003   1.65    0"
    assert fmt.text(exit_event(exit_code=65)) == "bash             19003   17656   19003   1.65    code 65"
    assert fmt.text(exit_event(sig_info=2)) == "bash             19003   17656   19003   1.65    signal 2 (INT)"
    assert fmt.text(exit_event(sig_info=0x80 | 11)).endswith("signal 11 (SEGV), core dumped ")
    assert fmt.text(exit_event(sig_info=10)).endswith("signal 10 (USR1)")


@pytest.mark.parametrize("sig,name", [(1, "HUP"), (6, "ABRT"), (9, "KILL"), (10, "USR1"), (12, "USR2"),
                                      (15, "TERM"), (17, "CHLD"), (34, "RTMIN"), (64, "RTMAX"), (40, "unknown")])
def test_exitsnoop_signal_names(sig: int, name: str) -> None:
    assert exitsnoop.signal_name(sig) == name


def test_exitsnoop_time_label_and_utc() -> None:
    args = exitsnoop.parse_args(["--utc", "-x", "--label="])
    assert args.timestamp and args.failed
    assert exitsnoop.header(args) == "TIME-UTC     LABEL PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE "
    fmt = exitsnoop.Formatter(args)
    now = 1_700_000_000.997  # 22:13:20.997 UTC
    line = fmt.text(exit_event(exit_code=65), now=now)
    assert line == "22:13:20.997 exit  bash             19003   17656   19003   1.65    code 65"
    labelled = exitsnoop.Formatter(exitsnoop.parse_args(["--label", "quit"]))
    assert (labelled.text(exit_event()) or "").startswith("quit  bash ")
    local = exitsnoop.parse_args(["-t"])
    assert re.match(r"TIME-\S+\s+PCOMM", exitsnoop.header(local))


def test_exitsnoop_json_and_arguments() -> None:
    fmt = exitsnoop.Formatter(exitsnoop.parse_args(["--json", "--per-thread"]))
    rec = fmt.record(exit_event(sig_info=0x80 | 6))
    assert rec == {"pcomm": "bash", "pid": 19003, "ppid": 17656, "tid": 19003, "age_s": 1.65, "exit_code": 0,
                   "signal": 6, "signal_name": "ABRT", "core_dumped": True}
    assert exitsnoop.parse_args(["-p", "181"]).pid == 181
    with pytest.raises(SystemExit):
        exitsnoop.parse_args(["-p", "zero"])


# --- refusing to run -----------------------------------------------------------------------------


def test_missing_hooks_give_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from ebpf import features
    from ebpf.errors import EbpfError
    from ebpf.sys import tracefs
    from ebpf.tools import runtime

    monkeypatch.setattr(runtime, "require_privileges", lambda: None)
    monkeypatch.setattr(runtime, "existing_tracepoints", lambda group, names: [])
    with pytest.raises(EbpfError, match="no syscalls/sys_enter_open"):
        opensnoop.run([])
    with pytest.raises(EbpfError, match="no syscalls/sys_enter_execve"):
        execsnoop.run([])
    monkeypatch.setattr(features, "have_tp_btf", lambda name="": False)
    monkeypatch.setattr(tracefs, "tracepoint_exists", lambda group, name: False)
    with pytest.raises(EbpfError, match="no sched/sched_process_exit"):
        exitsnoop.run([])


def test_attach_order_hooks_openat_entry_last() -> None:
    assert opensnoop.attach_order(["open", "openat", "openat2"]) == \
        ["exit_open", "exit_openat", "exit_openat2", "enter_open", "enter_openat2", "enter_openat"]
