"""The BCC tools rebuilt on ebpf. Each is ``ebpf/tools/NAME.py`` with ``run(argv) -> int``.

``TOOLS`` lists them with one line each, without importing any of them.
"""

TOOLS: dict = {}
