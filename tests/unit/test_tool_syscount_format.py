"""syscount without the kernel: flags, the syscall table, BCC's output lines, JSON intervals.

The golden lines are BCC's own output, copied from ``tools/syscount_example.txt`` of iovisor/bcc.
"""

from __future__ import annotations

import errno
import time
from typing import Iterator, List

import pytest

from ebpf.tools import _syscalls, syscount
from ebpf.tools.syscount import Row

NOW = 1764000000.0
STAMP = "[%s]" % time.strftime("%H:%M:%S", time.localtime(NOW))

# the numbers of BCC's examples (x86_64); 321 was missing from BCC's table then
TABLE = {0: "read", 1: "write", 4: "stat", 16: "ioctl", 23: "select", 35: "nanosleep", 62: "kill",
         77: "ftruncate", 110: "getppid", 286: "timerfd_settime", 5: "fstat"}


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_syscalls, "_table", dict(TABLE))
    yield


def lines(argv: List[str], rows: List[Row]) -> List[str]:
    return syscount.stats_lines(rows, syscount.parse_args(argv), NOW)


# ---- flags ---------------------------------------------------------------------------------


def test_flags_are_bccs() -> None:
    a = syscount.parse_args(["-p", "42", "-i", "1", "-d", "3", "-T", "5", "-x", "-e", "ENOENT", "-L", "-m", "-P"])
    assert (a.pid, a.interval, a.duration, a.top, a.failures, a.errno) == (42, 1, 3, 5, True, errno.ENOENT)
    assert a.latency and a.milliseconds and a.process and not a.list and not a.json
    a = syscount.parse_args(["-t", "7", "-c", "8", "--syscall", "openat", "--json", "-l"])
    assert (a.tid, a.ppid, a.syscall, a.json, a.list) == (7, 8, "openat", True, True)
    assert syscount.parse_args([]).top == 10
    assert syscount.parse_args(["--exec", "ls", "-l", "/tmp"]).exec == ["ls", "-l", "/tmp"]


def test_errno_by_number_or_name() -> None:
    assert syscount.handle_errno("2") == 2
    assert syscount.handle_errno("-13") == 13
    assert syscount.handle_errno("EPERM") == errno.EPERM


@pytest.mark.parametrize("argv", [["-e", "ENOSUCH"], ["-p", "0"], ["-i", "x"], ["-T", "-1"], ["extra"]])
def test_bad_arguments_are_refused(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        syscount.parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: syscount" in err
    if argv[0] == "-e":
        assert "couldn't map ENOSUCH to an errno" in err


def test_conflicts_exit_1_before_touching_the_kernel(capsys: pytest.CaptureFixture[str], table: None) -> None:
    assert syscount.run(["-p", "1", "--exec", "true"]) == 1
    assert capsys.readouterr().err == "ERROR: can only use -p or --exec. Exiting.\n"
    assert syscount.run(["--exec"]) == 1
    assert capsys.readouterr().err == "ERROR: --exec without command. Exiting.\n"
    assert syscount.run(["--syscall", "no_such_call"]) == 1
    assert capsys.readouterr().err == "Error: syscall 'no_such_call' not found. Exiting.\n"


def test_banners() -> None:
    assert syscount.banner(syscount.parse_args([])) == "Tracing syscalls, printing top 10... Ctrl+C to quit."
    assert syscount.banner(syscount.parse_args(["-x", "-T", "3"])) == \
        "Tracing failed syscalls, printing top 3... Ctrl+C to quit."
    assert syscount.banner(syscount.parse_args(["--syscall", "stat"])) == "Tracing syscall 'stat'... Ctrl+C to quit."
    assert syscount.banner(syscount.parse_args(["-e", "ENOENT"])) == \
        "Tracing syscalls, printing top 10... Ctrl+C to quit."


# ---- the syscall table ---------------------------------------------------------------------


def test_unistd_header_parsing() -> None:
    text = "#ifndef X\n#define __NR_read 0\n#define __NR_write 1\n#define __NR_getppid 110\n" \
           "#define __NR_syscalls 451\n#define __NR3264_x __NR_read\n#endif\n"
    assert _syscalls.parse_unistd(text) == {0: "read", 1: "write", 110: "getppid", 451: "syscalls"}


def test_this_machines_table() -> None:
    table = _syscalls.syscall_table()
    if not table:
        pytest.skip("no uapi unistd header on this machine")
    assert table[_syscalls.syscall_number("getppid") or 0] == "getppid"
    assert _syscalls.syscall_name(10**6) == "[unknown: 1000000]"


def test_missing_header_gives_an_empty_table() -> None:
    assert _syscalls.syscall_table(["/nonexistent/unistd_64.h"]) == {}


def test_list_is_four_columns_of_22(table: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert syscount.run(["-l"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = sorted(TABLE.values())
    assert out[0] == "   ".join("%-22s" % n for n in names[:4])
    assert len(out) == 3 and out[2].split() == names[8:]


# ---- text output ---------------------------------------------------------------------------


def test_counts_golden(table: None) -> None:
    rows = [Row(4, 4669, 0, ""), Row(0, 1951, 0, ""), Row(1, 7, 0, ""), Row(16, 4669 * 2, 0, "")]
    assert lines([], rows) == [
        STAMP,
        "SYSCALL                   COUNT",
        "ioctl                      9338",
        "stat                       4669",
        "read                       1951",
        "write                         7",
        "",
    ]


def test_top_n_and_unknown_numbers(table: None) -> None:
    rows = [Row(nr, 100 - nr, 0, "") for nr in (0, 1, 4, 5)] + [Row(321, 1, 0, "")]
    out = lines(["-T", "2"], rows)
    assert out[2:] == ["read                        100", "write                        99", ""]
    assert lines(["-T", "9"], rows)[-2] == "[unknown: 321]                1"


def test_latency_golden(table: None) -> None:
    rows = [Row(23, 16, 3415860022, ""), Row(35, 291, 12038707, ""), Row(321, 32, 4965, ""),
            Row(62, 1, 4342, "")]
    assert lines(["-L"], rows) == [
        STAMP,
        "SYSCALL                   COUNT        TIME (us)",
        "select                       16      3415860.022",
        "nanosleep                   291        12038.707",
        "[unknown: 321]               32            4.965",
        "kill                          1            4.342",
        "",
    ]
    assert lines(["-L", "-m"], rows[:1])[1:3] == [
        "SYSCALL                   COUNT        TIME (ms)",
        "select                       16      3415.860022",
    ]


def test_process_golden(table: None) -> None:
    rows = [Row(30216, 149, 0, "sshd"), Row(13820, 548, 0, "vim"), Row(529, 9, 0, "systemd-udevd"),
            Row(77, 1, 0, "")]
    assert lines(["-P"], rows) == [
        STAMP,
        "PID    COMM               COUNT",
        "13820  vim                  548",
        "30216  sshd                 149",
        "529    systemd-udevd          9",
        "77     [unknown]              1",
        "",
    ]
    assert lines(["-P", "-L"], [Row(13820, 548, 2_500_000, "vim")])[1:3] == [
        "PID    COMM               COUNT        TIME (us)",
        "13820  vim                  548         2500.000",
    ]


# ---- JSON ----------------------------------------------------------------------------------


def test_json_intervals(table: None) -> None:
    rows = [Row(110, 5000, 123456, ""), Row(0, 7, 1, "")]
    rec = syscount.stats_record(rows, syscount.parse_args(["--json", "-T", "1"]), NOW)
    assert rec == {"ts": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW)),
                   "syscalls": [{"syscall": "getppid", "nr": 110, "count": 5000}]}
    rec = syscount.stats_record([Row(42, 3, 900, "dd")], syscount.parse_args(["--json", "-P", "-L"]), NOW)
    assert rec["processes"] == [{"pid": 42, "comm": "dd", "count": 3, "total_ns": 900}]


def test_rows_from_map_items() -> None:
    v = syscount.Data(count=3, total_ns=7, comm=b"dd")
    assert syscount.rows_of([(110, v)]) == [Row(110, 3, 7, "dd")]
    assert syscount.Data.size() == 32
