"""The VM tier: our tools and hooks on other kernels, booted under qemu.

Why: users run distribution kernels (Debian 5.10/6.1/6.12, ...) and this host lacks kprobes and
refuses fentry, so what old verifiers reject and what kprobe/fentry programs do can only be
tested in a guest. The measured recipe behind it is the project notes' reference/vm-harness.md.

How it works:

- :mod:`.kernels` fetches ``linux-image-<abi>-unsigned`` with apt (a private configuration
  under ``~/.cache/ebpf-vm/apt`` pointing at the host's Debian mirror, so bullseye's 5.10 works
  on a bookworm host), extracts the ELF ``vmlinux`` from the bzImage (qemu boots it through its
  PVH entry in ~5 s instead of ~17 s) and the 9p/virtio modules in dependency order.
- :mod:`.initramfs` writes a busybox initramfs whose ``/init`` loads them, mounts the host's
  ``/`` read-only over 9p (``cache=none``: the host's tree changes while a guest runs, and with
  ``cache=loose`` sources once read back as NUL bytes; ``none`` costs ~15 s of a 6.12 smoke),
  mounts proc/sys/dev/debugfs/tracefs/bpffs and tmpfs on ``/run``, ``/tmp`` and ``/dev/shm``,
  and chroots into it to run one command.
- :mod:`.machine` boots qemu (``-accel tcg -cpu max``, 1 vCPU, 2 GiB, a 64 MiB scratch disk as
  ``/dev/vda``), streams the command's output from the second serial port and returns its status.
  The command runs in the caller's directory with ``PYTHONPATH`` set to this working tree (not the
  installed package), ``EBPF_CACHE_DIR=/run/ebpf-cache`` (empty at each boot: every program is
  compiled for that kernel) and nothing written into the tree (no bytecode, no .pytest_cache).
- :mod:`.guest_checks` runs inside: each tool as a user runs it (``--json`` for the interval
  tools) until its event shows, and a DSL counter of ``do_sys_openat2`` as kprobe and fentry,
  in one Python process (an import costs seconds under TCG); :mod:`.hook_checks` attaches a program
  to every hook kind (kprobe ... tc), sees its event and compares that with ``ebpf features``.
- ``test_tier.py`` makes each check of each kernel a test; ``conftest.py`` keeps only the 6.12
  smoke unless ``-m`` is given, boots each kernel once and prints the check x kernel table.

Commands::

    pytest -q -m vm                                    # the whole tier
    python -m tests.vm 5.10 -- python -m ebpf.tools.opensnoop -d 3
    python -m tests.vm 6.12 -- pytest -q tests/kernel/test_attach_tracing.py
    python -m tests.vm --fetch 5.10 6.1 6.12           # fill the cache (e.g. before going offline)

``EBPF_VM_CACHE`` moves the cache (default ``$XDG_CACHE_HOME/ebpf-vm`` or ``~/.cache/ebpf-vm``).
This host's own kernel (6.18) is not booted: its image is not on disk (``/boot`` is empty) and it
is built without 9p (``CONFIG_NET_9P`` off) and modules; the ``host`` column runs the same checks
on it directly.
"""
