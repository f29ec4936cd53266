"""The VM harness's pieces without a VM: apt sources, module order, vmlinux extraction, the cpio
archive and the guest's command script."""

from __future__ import annotations

import gzip
import lzma
import pathlib
import re
import subprocess

import pytest

from . import initramfs, kernels, machine


def test_mirrors_come_from_deb822_and_one_line_sources(tmp_path: pathlib.Path) -> None:
    (tmp_path / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\nComponents: main\n")
    (tmp_path / "other.list").write_text("deb [arch=amd64] https://packages.example/apt stable main\n")
    paths = [str(tmp_path / "other.list"), str(tmp_path / "debian.sources")]
    assert kernels.host_mirrors(paths) == ("http://mirror.example/debian", "http://mirror.example/debian-security")
    (tmp_path / "old.list").write_text("# comment\ndeb http://old.example/debian bullseye main\n")
    assert kernels.host_mirrors([str(tmp_path / "old.list")]) == (
        "http://old.example/debian", "http://deb.debian.org/debian-security")
    assert kernels.host_mirrors([]) == ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security")


def ko(depends: str) -> bytes:
    return b"\x7fELF...\x00license=GPL\x00depends=" + depends.encode() + b"\x00intree=Y\x00"


def test_modules_load_after_their_dependencies_and_built_ins_are_skipped() -> None:
    available = {"9p": ko("9pnet,netfs"), "9pnet": ko(""), "netfs": ko(""), "9pnet_virtio": ko("9pnet,virtio_ring"),
                 "loop_a": ko("loop_b"), "loop_b": ko("loop_a")}
    assert kernels.module_depends(available["9p"]) == ["9pnet", "netfs"]
    order = kernels.load_order(available, ["virtio_pci", "9pnet_virtio", "9p", "loop_a"])
    assert order == ["9pnet", "9pnet_virtio", "netfs", "9p", "loop_b", "loop_a"]  # virtio_*: built in


def test_the_elf_kernel_is_found_among_compressed_streams() -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 64
    for compress in (lzma.compress, gzip.compress):
        decoy = gzip.compress(b"not a kernel")
        image = b"MZ boot sector" + decoy + b"\x00" * 100 + compress(elf) + b"trailing setup data"
        assert kernels.extract_vmlinux(image) == elf
    with pytest.raises(kernels.FetchError, match="no compressed ELF kernel"):
        kernels.extract_vmlinux(b"MZ" + gzip.compress(b"just data"))


def test_series_package_patterns_pick_the_newest_abi() -> None:
    names = ["linux-image-6.1.0-9-amd64-unsigned", "linux-image-6.1.0-57-amd64-unsigned",
             "linux-image-6.1.0-57-cloud-amd64-unsigned", "linux-image-6.12.118+deb12-amd64-unsigned"]
    six_one = [m.group(1) for n in names if (m := re.fullmatch(kernels.SERIES["6.1"].package, n))]
    assert max(six_one, key=kernels._version_key) == "6.1.0-57-amd64"
    assert [n for n in names if re.fullmatch(kernels.SERIES["6.12"].package, n)] == [names[3]]


def test_the_initramfs_is_a_newc_archive_the_kernel_can_unpack(tmp_path: pathlib.Path) -> None:
    module = tmp_path / "00-9p.ko"
    module.write_bytes(ko("9pnet"))
    archive = initramfs.build([module], "echo hi\n")
    assert len(archive) % 512 == 0
    listing = subprocess.run([str(initramfs.busybox_path()), "cpio", "-t"], input=archive, capture_output=True,
                             check=True).stdout.decode().split()
    assert {"init", "cmd", "bin/busybox", "bin/sh", "dev/console", "modules/00-9p.ko"} <= set(listing)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run([str(initramfs.busybox_path()), "cpio", "-id", "init", "cmd", "modules/00-9p.ko"],
                   input=archive, cwd=out, check=True, capture_output=True)
    assert (out / "cmd").read_text() == "echo hi\n"
    assert (out / "modules/00-9p.ko").read_bytes() == ko("9pnet")
    assert "hostroot" in (out / "init").read_text()


def test_the_guest_command_runs_from_the_working_tree_and_writes_only_to_tmpfs() -> None:
    env = machine.environment(machine.GUEST_CACHE)
    assert env["PYTHONPATH"] == str(machine.ROOT)
    assert env["EBPF_CACHE_DIR"].startswith("/run/") and env["XDG_CACHE_HOME"].startswith("/run/")
    assert "no:cacheprovider" in env["PYTEST_ADDOPTS"] and env["PYTHONDONTWRITEBYTECODE"] == "1"
    text = machine.script(["python", "-c", "print('a b')"], machine.ROOT, env)
    assert text.splitlines()[-1] == "exec python -c 'print('\"'\"'a b'\"'\"')'"
    assert f"cd {machine.ROOT}" in text


def test_only_a_static_busybox_will_do() -> None:
    assert not initramfs.has_interpreter(initramfs.busybox_path().read_bytes())
    assert initramfs.has_interpreter(pathlib.Path("/bin/sh").resolve().read_bytes())
