"""The guest's initramfs: busybox, the 9p/virtio modules and an ``/init`` that makes the host's
root (read-only, over 9p) the guest's root and runs one command in it.

The archive is written here in the kernel's ``newc`` cpio format (a few MB, milliseconds), so no
cpio tool or root privileges are needed to build it (``/dev/console`` is an archive entry, not a
node on the host). The command's output goes to the second serial port (``/dev/ttyS1``), apart
from the kernel's messages on the console (``ttyS0``), and ends with ``@@vm-exit STATUS``.
"""

from __future__ import annotations

import io
import pathlib
import shutil
import stat
import struct
from typing import Iterable, Tuple

EXIT_MARK = "@@vm-exit"
PT_INTERP = 3

# Runs as PID 1 under busybox's sh. Everything the guest may write is a tmpfs (/run, /tmp,
# /dev/shm); the host's tree is read-only. A failure before the command prints on the console.
INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do
    [ -e "$m" ] && { insmod "$m" || echo "vm-init: insmod $m failed"; }
done
R=/newroot
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=none hostroot $R; then
    echo "vm-init: cannot mount the host's root over 9p"
    echo "$EXIT_MARK 125" >/dev/ttyS1
    poweroff -f
fi
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/shm
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=755 run $R/run
mount -t tmpfs -o mode=1777 tmp $R/tmp
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null || true
mount -t bpf bpf $R/sys/fs/bpf
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null || true
cp /cmd $R/run/vm-cmd
chroot $R /bin/sh /run/vm-cmd </dev/null >/dev/ttyS1 2>&1
echo "$EXIT_MARK $?" >/dev/ttyS1
poweroff -f
""".replace("$EXIT_MARK", EXIT_MARK)


class Cpio:
    """A ``newc`` cpio archive built in memory."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: Tuple[int, int] = (0, 0)) -> None:
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + name.encode() + b"\0")
        self._pad()
        self.out.write(data)
        self._pad()

    def _pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.out.write(b"\0" * (-self.out.tell() % 512))
        return self.out.getvalue()


BUSYBOX_APPLETS = ("sh", "mount", "insmod", "mkdir", "cp", "chroot", "poweroff", "echo", "cat")


def busybox_path() -> pathlib.Path:
    """The statically linked busybox (Debian's busybox-static); the guest has no libc of its own
    before it reaches the host's root."""
    found = shutil.which("busybox") or next((p for p in ("/bin/busybox", "/usr/bin/busybox")
                                             if pathlib.Path(p).exists()), None)
    if found is None:
        raise FileNotFoundError("busybox not found: install busybox-static")
    if has_interpreter(pathlib.Path(found).read_bytes()):
        raise FileNotFoundError(f"{found} is dynamically linked: install busybox-static")
    return pathlib.Path(found)


def has_interpreter(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF executable names a dynamic loader (a PT_INTERP header)."""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == PT_INTERP for i in range(phnum))


def build(modules: Iterable[pathlib.Path], command: str) -> bytes:
    """The initramfs: busybox, ``modules`` (loaded in the given order), ``/init`` and ``/cmd``
    (a shell script run in the host's root)."""
    archive = Cpio()
    for d in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        archive.dir(d)
    archive.chardev("dev/console", 5, 1)
    archive.file("bin/busybox", busybox_path().read_bytes(), 0o755)
    for applet in BUSYBOX_APPLETS:
        archive.symlink(f"bin/{applet}", "busybox")
    for module in modules:
        archive.file(f"modules/{module.name}", module.read_bytes())
    archive.file("init", INIT.encode(), 0o755)
    archive.file("cmd", command.encode(), 0o755)
    return archive.finish()
