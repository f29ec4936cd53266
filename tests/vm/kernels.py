"""Debian's kernel packages for the VM tier: which ones, fetched with apt, unpacked and cached.

A kernel here is what qemu needs to boot it and the initramfs needs to reach the host's root:
the uncompressed ``vmlinux`` (booted through its PVH entry: the bzImage spends ~8 s
decompressing itself under TCG) and the ``.ko`` files of the 9p/virtio modules in load order.

Packages come from Debian's mirror through a private apt configuration (own sources, lists and
archive cache under the cache directory): the host's apt state is neither read for versions nor
changed, and bullseye (5.10) works on a bookworm host. The mirror is the one the host's apt
sources name, else deb.debian.org. The newest ABI of a series is fetched once, then the cached
one is used until ``refresh`` is asked for.
"""

from __future__ import annotations

import dataclasses
import glob
import lzma
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import zlib
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

# the modules that give the guest its root over 9p and a virtio disk; their dependencies are
# read from each module's .modinfo, and modules built into a kernel are simply not found
ROOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "virtio_blk")


@dataclasses.dataclass(frozen=True)
class Series:
    """A kernel series and where Debian ships it."""

    name: str  # "6.1": what a developer types
    suites: Tuple[str, ...]  # Debian suites carrying its package
    package: str  # regexp of the package name, group 1 is the ABI


SERIES: Dict[str, Series] = {s.name: s for s in (
    Series("5.10", ("bullseye", "bullseye-updates", "bullseye-security"),
           r"linux-image-(5\.10\.0-\d+-amd64)-unsigned"),
    Series("6.1", ("bookworm", "bookworm-updates", "bookworm-security"),
           r"linux-image-(6\.1\.0-\d+-amd64)-unsigned"),
    Series("6.12", ("bookworm", "bookworm-updates", "bookworm-security"),
           r"linux-image-(6\.12\.\d+\+deb12-amd64)-unsigned"),
)}


class FetchError(RuntimeError):
    """A kernel could not be fetched or unpacked (the message says which step and why)."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    """An unpacked kernel ready to boot."""

    series: str
    abi: str  # uname -r in the guest
    vmlinux: pathlib.Path
    modules: Tuple[pathlib.Path, ...]  # in load order


def cache_root() -> pathlib.Path:
    """``$EBPF_VM_CACHE``, else ``$XDG_CACHE_HOME/ebpf-vm``, else ``~/.cache/ebpf-vm``."""
    configured = os.environ.get("EBPF_VM_CACHE")
    if configured:
        return pathlib.Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "ebpf-vm"


# --- the mirror and the private apt configuration -------------------------------------------

def host_mirrors(paths: Optional[Iterable[str]] = None) -> Tuple[str, str]:
    """(archive, security) URIs of Debian's mirror as the host's apt sources name them."""
    if paths is None:
        paths = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
    archive = security = ""
    for path in paths:
        try:
            text = pathlib.Path(path).read_text(errors="replace")
        except OSError:
            continue
        for uri, suites in _source_entries(text, deb822=path.endswith(".sources")):
            if not re.search(r"/debian(-security)?/?$", uri):
                continue
            if any(s.endswith("-security") for s in suites) or uri.rstrip("/").endswith("debian-security"):
                security = security or uri.rstrip("/")
            else:
                archive = archive or uri.rstrip("/")
    return archive or "http://deb.debian.org/debian", security or "http://deb.debian.org/debian-security"


def _source_entries(text: str, deb822: bool) -> List[Tuple[str, List[str]]]:
    """(URI, suites) of each ``deb`` source in a sources.list or deb822 .sources text."""
    out: List[Tuple[str, List[str]]] = []
    if not deb822:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                out.append((words[1], [words[2]]))
        return out
    for stanza in re.split(r"\n\s*\n", text):
        fields: Dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                out.append((uri, fields.get("suites", "").split()))
    return out


class Apt:
    """apt-get/apt-cache on a private configuration under ``root`` (sources, lists, archives)
    that knows only ``suites`` (one Debian release: its lists are all a fetch downloads)."""

    def __init__(self, root: pathlib.Path, suites: Sequence[str]) -> None:
        self.root = root
        archive, security = host_mirrors()
        lines = [f"deb {security if s.endswith('-security') else archive} {s} main" for s in suites]
        for sub in ("lists/partial", "cache/archives/partial"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        sources = root / "sources.list"
        text = "\n".join(lines) + "\n"
        if not sources.exists() or sources.read_text() != text:
            sources.write_text(text)
            shutil.rmtree(root / "lists")
            (root / "lists/partial").mkdir(parents=True)

    def options(self) -> List[str]:
        opts = {
            "Dir::Etc::SourceList": self.root / "sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::State::Lists": self.root / "lists",
            "Dir::Cache": self.root / "cache",
            "Dir::Cache::pkgcache": "",
            "Dir::Cache::srcpkgcache": "",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
            "Debug::NoLocking": "1",
            "Acquire::Languages": "none",
        }
        return [arg for key, value in opts.items() if value != "" or key.startswith("Dir::Cache::")
                for arg in ("-o", f"{key}={value}")]

    def run(self, tool: str, *args: str, cwd: Optional[pathlib.Path] = None) -> str:
        proc = subprocess.run([tool, "-q", *self.options(), *args], cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FetchError(f"{tool} {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def has_lists(self) -> bool:
        return any((self.root / "lists").glob("*_Packages*"))

    def update(self) -> None:
        self.run("apt-get", "update")

    def newest(self, series: Series) -> str:
        """The newest ABI of ``series`` the lists offer."""
        names = self.run("apt-cache", "pkgnames", "linux-image-").split()
        abis = [m.group(1) for m in (re.fullmatch(series.package, n) for n in names) if m]
        if not abis:
            raise FetchError(f"no package matching {series.package} in {', '.join(series.suites)}")
        return max(abis, key=_version_key)

    def download(self, package: str, into: pathlib.Path) -> pathlib.Path:
        self.run("apt-get", "download", package, cwd=into)
        debs = sorted(into.glob(f"{glob.escape(package)}_*.deb"))
        if not debs:
            raise FetchError(f"apt-get download {package}: no .deb written")
        return debs[-1]


def _version_key(abi: str) -> Tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", abi))


# --- unpacking --------------------------------------------------------------------------------

_STREAMS = ((b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\x1f\x8b\x08", "gzip"))


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF vmlinux inside a bzImage: the compressed stream whose output starts with ``\\x7fELF``."""
    for magic, kind in _STREAMS:
        start = bzimage.find(magic)
        while start != -1:
            data = _decompress(kind, bzimage[start:])
            if data[:4] == b"\x7fELF":
                return data
            start = bzimage.find(magic, start + 1)
    raise FetchError("no compressed ELF kernel found in the bzImage")


def _decompress(kind: str, data: bytes) -> bytes:
    """As much as decompresses from the head of ``data`` (trailing bytes are the bzImage's)."""
    try:
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(data)
        if kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
        if shutil.which("zstd") is None:
            return b""
        proc = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True)
        return proc.stdout  # trailing garbage makes zstd complain after writing the frame
    except (lzma.LZMAError, zlib.error):
        return b""


def module_depends(ko: bytes) -> List[str]:
    """The ``depends=`` of a module's .modinfo (names with ``_``, as the kernel knows them)."""
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", ko)
    if not m or not m.group(1):
        return []
    return [name.decode().replace("-", "_") for name in m.group(1).split(b",")]


def load_order(available: Dict[str, bytes], roots: Sequence[str]) -> List[str]:
    """``roots`` and their dependencies among ``available`` modules, dependencies first;
    names not available are built into the kernel (or absent) and skipped."""
    order: List[str] = []

    def visit(name: str, path: Tuple[str, ...]) -> None:
        if name in order or name not in available or name in path:
            return
        for dep in module_depends(available[name]):
            visit(dep, path + (name,))
        order.append(name)

    for root in roots:
        visit(root, ())
    return order


def _module_files(tree: pathlib.Path) -> Dict[str, pathlib.Path]:
    files: Dict[str, pathlib.Path] = {}
    for path in tree.rglob("*.ko*"):
        name = path.name.split(".ko")[0].replace("-", "_")
        files[name] = path
    return files


def _read_module(path: pathlib.Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    if path.name.endswith(".gz"):
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    return data


def unpack(series: str, deb: pathlib.Path, into: pathlib.Path) -> Kernel:
    """vmlinux and the modules in load order from a ``linux-image-*-unsigned`` package."""
    with tempfile.TemporaryDirectory(dir=into.parent) as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        images = sorted(pathlib.Path(tmp, "boot").glob("vmlinuz-*"))
        if not images:
            raise FetchError(f"{deb.name}: no boot/vmlinuz-*")
        abi = images[0].name[len("vmlinuz-"):]
        staging = into.with_name(into.name + ".part")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "modules").mkdir(parents=True)
        (staging / "vmlinux").write_bytes(extract_vmlinux(images[0].read_bytes()))
        files = _module_files(pathlib.Path(tmp, "lib/modules", abi))
        available = {name: _read_module(files[name]) for name in _closure(files, ROOT_MODULES)}
        names = load_order(available, ROOT_MODULES)
        for i, name in enumerate(names):
            (staging / "modules" / f"{i:02d}-{name}.ko").write_bytes(available[name])
        (staging / "abi").write_text(abi + "\n")
        shutil.rmtree(into, ignore_errors=True)
        staging.rename(into)
    kernel = cached(series, into)
    assert kernel is not None
    return kernel


def _closure(files: Dict[str, pathlib.Path], roots: Sequence[str]) -> List[str]:
    """Names of ``roots`` and everything they depend on, found among ``files``."""
    seen: List[str] = []
    todo = [r for r in roots]
    while todo:
        name = todo.pop()
        if name in seen or name not in files:
            continue
        seen.append(name)
        todo.extend(module_depends(_read_module(files[name])))
    return seen


def cached(series: str, directory: pathlib.Path) -> Optional[Kernel]:
    """The kernel unpacked in ``directory``, or None when it is not complete."""
    abi_file = directory / "abi"
    if not abi_file.exists() or not (directory / "vmlinux").exists():
        return None
    modules = tuple(sorted((directory / "modules").glob("*.ko")))
    return Kernel(series, abi_file.read_text().strip(), directory / "vmlinux", modules)


def fetch(series_name: str, refresh: bool = False, log: Optional[Callable[[str], None]] = None) -> Kernel:
    """The newest cached kernel of a series, fetched from Debian's mirror when none is cached
    (or when ``refresh``: then a newer ABI replaces nothing, it is added beside)."""
    if series_name not in SERIES:
        raise FetchError(f"unknown kernel {series_name!r}: choose from {', '.join(SERIES)}")
    series = SERIES[series_name]
    root = cache_root()
    kdir = root / "kernels"
    if not refresh:
        found = [k for d in sorted(kdir.glob(f"{series_name}_*")) if (k := cached(series_name, d))]
        if found:
            return max(found, key=lambda k: _version_key(k.abi))
    kdir.mkdir(parents=True, exist_ok=True)
    apt = Apt(root / "apt" / series.suites[0], series.suites)
    if refresh or not apt.has_lists():
        _say(log, f"apt-get update (private lists under {apt.root})")
        apt.update()
    abi = apt.newest(series)
    target = kdir / f"{series_name}_{abi}"
    if (k := cached(series_name, target)):
        return k
    package = f"linux-image-{abi}-unsigned"
    downloads = root / "debs"
    downloads.mkdir(exist_ok=True)
    _say(log, f"apt-get download {package}")
    try:
        deb = apt.download(package, downloads)
    except FetchError:  # lists older than the mirror's pool: refresh them once
        apt.update()
        abi = apt.newest(series)
        package = f"linux-image-{abi}-unsigned"
        target = kdir / f"{series_name}_{abi}"
        deb = apt.download(package, downloads)
    _say(log, f"unpacking {deb.name}")
    kernel = unpack(series_name, deb, target)
    deb.unlink()
    return kernel


def _say(log: Optional[Callable[[str], None]], text: str) -> None:
    if log is not None:
        log(text)
