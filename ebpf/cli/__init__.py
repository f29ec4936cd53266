"""The ``ebpf`` command. Each verb is a module ``ebpf.cli.<verb>`` with ``run(argv) -> int``."""
