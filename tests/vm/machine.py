"""One command in a guest kernel: boot qemu (TCG), run it in the host's root, return its output.

The guest sees the host's ``/`` read-only over 9p, so the host's Python and this working tree run
unchanged; the package is imported from the working tree (``PYTHONPATH`` is the repository, the
command starts in the caller's directory), never from the host's site-packages install. What the
guest may write is a tmpfs: ``/run`` (``EBPF_CACHE_DIR=/run/ebpf-cache``, empty at every boot, so
every program is compiled for that kernel), ``/tmp`` and ``/dev/shm``. A 64 MiB sparse disk is
``/dev/vda`` for the block tools.

``host`` is accepted as a kernel name: the same command on the running kernel, without a VM, with
the same environment (a fresh cache directory), so the tier's table has this host's column.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import initramfs, kernels

ROOT = pathlib.Path(__file__).resolve().parents[2]
TREE_TAG = "hosttree"  # the working tree, shared apart: a guest tmpfs may hide its place in the root
HOST = "host"
QEMU = "qemu-system-x86_64"
GUEST_CACHE = "/run/ebpf-cache"


@dataclasses.dataclass
class Result:
    """What a command did in a guest."""

    kernel: str  # the series asked for ("6.1") or "host"
    release: str  # the kernel's release (uname -r)
    status: Optional[int]  # the command's exit status; None when it never reported one
    output: str  # its stdout and stderr
    console: str  # the kernel's console (boot messages, oopses, init's complaints)
    seconds: float  # wall time from qemu's start to its exit

    def describe(self) -> str:
        """The end of the console and output, for an assertion message."""
        tail = "\n".join(self.output.splitlines()[-40:])
        console = "\n".join(self.console.splitlines()[-25:])
        return (f"{self.kernel} ({self.release}): status {self.status} after {self.seconds:.1f}s\n"
                f"--- output (tail) ---\n{tail}\n--- console (tail) ---\n{console}")


def names() -> List[str]:
    """Every kernel a command can run on."""
    return [*kernels.SERIES, HOST]


def host_boot_problem() -> str:
    """Why this host's own kernel is not booted as a guest (the ``host`` column runs on it
    directly instead): its image is not on disk, or it cannot reach a 9p root."""
    release = platform.release()
    if not pathlib.Path(f"/boot/vmlinuz-{release}").exists():
        return f"/boot/vmlinuz-{release} does not exist (the host's kernel image is not on disk)"
    config = pathlib.Path(f"/boot/config-{release}")
    if config.exists() and "CONFIG_NET_9P=" not in config.read_text(errors="replace"):
        return "it is built without 9p (CONFIG_NET_9P off)"
    return "booting the host's own image is not implemented (its modules would have to come from /lib/modules)"


def environment(cache_dir: str) -> Dict[str, str]:
    """The command's environment: this Python's bin directory first on PATH (not pyenv's shims, a
    shell script per call), the working tree on PYTHONPATH, writable paths on tmpfs."""
    python_bin = os.path.dirname(os.path.realpath(sys.executable))
    env = {
        "PATH": os.pathsep.join([python_bin, os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")]),
        "HOME": os.path.expanduser("~"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "TMPDIR": "/tmp",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",  # the tree is read-only in the guest
        "PYTHONUNBUFFERED": "1",
        "PYTEST_ADDOPTS": "-p no:cacheprovider",  # .pytest_cache would be written into the tree
        "HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(os.path.dirname(cache_dir), "hypothesis"),  # .hypothesis too
        "EBPF_CACHE_DIR": cache_dir,
        "XDG_CACHE_HOME": os.path.join(os.path.dirname(cache_dir), "xdg-cache"),
    }
    for key, value in os.environ.items():  # EBPF_REQUIRE_KERNEL and friends, not the cache's place
        if key.startswith("EBPF_") and key not in env and not key.startswith("EBPF_VM_"):
            env[key] = value
    return env


def script(argv: Sequence[str], cwd: pathlib.Path, env: Dict[str, str]) -> str:
    """The shell script the guest runs: environment, directory, command."""
    lines = ["set -e"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    tree = shlex.quote(str(ROOT))
    # a tree under a path the guest covers with tmpfs (/tmp, /run: a CI checkout, say) comes as its own share
    lines += [f"if [ ! -e {tree}/pyproject.toml ]; then mkdir -p {tree} && mount -t 9p -o "
              f"trans=virtio,version=9p2000.L,ro,msize=512000,cache=none {TREE_TAG} {tree}; fi"]
    lines += [f"mkdir -p {shlex.quote(env['EBPF_CACHE_DIR'])}", f"cd {shlex.quote(str(cwd))}",
              "set +e", f"exec {shlex.join(argv)}"]
    return "\n".join(lines) + "\n"


def run(kernel: str, argv: Sequence[str], *, cwd: Optional[pathlib.Path] = None, timeout: float = 900,
        on_line: Optional[Callable[[str], None]] = None, smp: int = 1, memory: str = "2G",
        log: Optional[Callable[[str], None]] = None) -> Result:
    """Run ``argv`` on ``kernel`` (a series of :data:`kernels.SERIES`, or ``host``); ``on_line``
    sees each output line as it comes. The kernel is fetched first if it is not cached."""
    cwd = cwd or pathlib.Path.cwd()
    if kernel == HOST:
        return _run_on_host(argv, cwd, timeout, on_line)
    if shutil.which(QEMU) is None:
        raise FileNotFoundError(f"{QEMU} not found: install qemu-system-x86")
    image = kernels.fetch(kernel, log=log)
    with tempfile.TemporaryDirectory(prefix="ebpf-vm-") as tmp:
        work = pathlib.Path(tmp)
        initrd = work / "initrd"
        initrd.write_bytes(initramfs.build(image.modules, script(argv, cwd, environment(GUEST_CACHE))))
        disk = work / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        console = work / "console.log"
        cmd = [
            QEMU, "-accel", "tcg", "-cpu", "max", "-m", memory, "-smp", str(smp),
            "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
            "-kernel", str(image.vmlinux), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1 quiet loglevel=4",
            "-serial", f"file:{console}", "-serial", "stdio",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={ROOT},mount_tag={TREE_TAG},security_model=none,readonly=on,multidevs=remap",
            "-drive", f"file={disk},if=virtio,format=raw",
        ]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines, status = _collect(proc, timeout, on_line)
        seconds = time.monotonic() - start
        text = console.read_text(errors="replace") if console.exists() else ""
        assert proc.stderr is not None
        qemu_err = proc.stderr.read().decode(errors="replace").strip()
        if qemu_err:
            text += f"\n[qemu] {qemu_err}"
        return Result(kernel, image.abi, status, "\n".join(lines), text, seconds)


def _collect(proc: subprocess.Popen[bytes], timeout: float,
             on_line: Optional[Callable[[str], None]]) -> Tuple[List[str], Optional[int]]:
    """The output lines up to the exit mark and the status in it; kills the VM at ``timeout``."""
    lines: List[str] = []
    status: List[int] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            if line.startswith(initramfs.EXIT_MARK):
                status.append(int(line.split()[1]))
                continue
            lines.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        lines.append(f"[vm] killed after {timeout:.0f}s")
    reader.join(5)
    return lines, (status[0] if status else None)


def _run_on_host(argv: Sequence[str], cwd: pathlib.Path, timeout: float,
                 on_line: Optional[Callable[[str], None]]) -> Result:
    with tempfile.TemporaryDirectory(prefix="ebpf-vm-host-") as tmp:
        env = dict(os.environ, **environment(os.path.join(tmp, "ebpf-cache")))
        os.makedirs(env["EBPF_CACHE_DIR"])
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        lines: List[str] = []
        assert proc.stdout is not None
        # the same streaming as in a VM; a timeout kills the command
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                if on_line is not None:
                    on_line(line)
            status: Optional[int] = proc.wait()
        finally:
            timer.cancel()
        return Result(HOST, platform.release(), status, "\n".join(lines), "", time.monotonic() - start)
