"""A private install of the working tree, made the way users install it, to be measured.

``pip install .`` of the tree into a throw-away virtual environment that sees the interpreter's
site-packages (where cffi, construct, pyroute2 and pycparser are): the console script, the
byte-code pip compiles and the dependencies are what a user gets, and nothing the rest of the
machine uses changes. A second environment runs the same install with an interpreter that skips
the sandbox's ``_sandboxing_egress_ca.pth`` only (it imports ``certifi`` at every interpreter
start, which is no part of our product): its site-packages holds a ``.pth`` that lists the first
environment's site-packages and the interpreter's, plus copies of the interpreter's other
``.pth`` files that only run imports (so only the sandbox's one is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from typing import List, NamedTuple, Optional, Tuple

from harness import clean_env

SANDBOX_PTH = "_sandboxing_egress_ca.pth"


class Install(NamedTuple):
    python: str  # the interpreter of the environment users would have
    script: str  # its ``ebpf`` console script
    site: str  # the site-packages holding ``ebpf``
    nopth_python: Optional[str]  # the same, skipping only the sandbox .pth
    nopth_script: Optional[str]
    how: str  # what was measured, in words


def base_python() -> str:
    """The real interpreter (not a pyenv shim): the one running this script."""
    return os.path.realpath(sys.executable)


def base_site() -> str:
    return sysconfig.get_paths()["purelib"]


def make(directory: str, tree: str, use_installed: bool = False) -> Install:
    """Install ``tree`` into ``directory``/user (and set up ``directory``/nopth)."""
    py = base_python()
    user = os.path.join(directory, "user")
    how = ""
    script = site = ""
    if not use_installed:
        try:
            subprocess.run([py, "-m", "venv", "--without-pip", "--system-site-packages", user], check=True,
                           capture_output=True)
            vpy = os.path.join(user, "bin", "python")
            log = _pip_install(vpy, tree)
            site = _site_of(vpy)
            script = os.path.join(user, "bin", "ebpf")
            if log is None and os.path.exists(os.path.join(site, "ebpf", "__init__.py")):
                how = f"pip install of {tree} into a private venv (--system-site-packages for the dependencies)"
            else:
                how = f"pip install of {tree} failed ({log}); measuring the interpreter's installed ebpf"
                use_installed = True
        except (subprocess.CalledProcessError, OSError) as e:
            how = f"could not make a venv ({e}); measuring the interpreter's installed ebpf"
            use_installed = True
    if use_installed:
        site = base_site()
        script = os.path.join(os.path.dirname(py), "ebpf")
        how = how or "the interpreter's installed ebpf (pip install . done beforehand)"
        if not os.path.exists(script):
            return Install(py, "", site, None, None, how + "; no ebpf console script found")
        vpy = py
    nopth_python, nopth_script = _nopth_env(os.path.join(directory, "nopth"), site, script)
    return Install(vpy, script, site, nopth_python, nopth_script, how)


def _pip_install(vpy: str, tree: str) -> Optional[str]:
    """``pip install --no-deps TREE`` with the venv's interpreter; None on success, else the error."""
    env = clean_env()
    attempts = (["--no-build-isolation"], [])  # offline first; an isolated build may need the index
    last = ""
    for extra in attempts:
        r = subprocess.run([vpy, "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check",
                            "-q", *extra, tree], capture_output=True, text=True, env=env, cwd=tree)
        if r.returncode == 0:
            return None
        last = (r.stderr.strip().splitlines() or ["pip failed"])[-1]
    return last


def _site_of(python: str) -> str:
    r = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def _nopth_env(path: str, ebpf_site: str, script: str) -> Tuple[Optional[str], Optional[str]]:
    """An environment that sees ``ebpf_site`` and the base site-packages without the sandbox .pth."""
    py = base_python()
    base = base_site()
    if not os.path.exists(os.path.join(base, SANDBOX_PTH)):
        return None, None  # nothing to skip: the plain figure is already the product's
    try:
        subprocess.run([py, "-m", "venv", "--without-pip", path], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError):
        return None, None
    vpy = os.path.join(path, "bin", "python")
    site = _site_of(vpy)
    lines: List[str] = []
    for p in (ebpf_site, base):
        if p not in lines and os.path.realpath(p) != os.path.realpath(site):
            lines.append(p)
    with open(os.path.join(site, "00-bench-paths.pth"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for name in sorted(os.listdir(base)):
        if not name.endswith(".pth") or name == SANDBOX_PTH:
            continue
        with open(os.path.join(base, name)) as f:
            text = f.read()
        if all(not ln.strip() or ln.startswith(("import ", "import\t", "#")) for ln in text.splitlines()):
            shutil.copyfile(os.path.join(base, name), os.path.join(site, name))
    nopth_script = os.path.join(path, "bin", "ebpf")
    with open(script) as f:
        body = f.read().split("\n", 1)[1]
    with open(nopth_script, "w") as f:
        f.write(f"#!{vpy}\n{body}")
    os.chmod(nopth_script, 0o755)
    return vpy, nopth_script


def has_tool(install: Install, tool: str) -> bool:
    return os.path.exists(os.path.join(install.site, "ebpf", "tools", f"{tool}.py"))


def pyc_missing(install: Install) -> List[str]:
    """Modules of the installed package without a byte-code file for this interpreter."""
    tag = sys.implementation.cache_tag
    missing = []
    root = os.path.join(install.site, "ebpf")
    for dirpath, _dirs, files in os.walk(root):
        if dirpath.endswith("__pycache__"):
            continue
        for name in files:
            if name.endswith(".py"):
                pyc = os.path.join(dirpath, "__pycache__", f"{name[:-3]}.{tag}.pyc")
                if not os.path.exists(pyc):
                    missing.append(os.path.relpath(os.path.join(dirpath, name), install.site))
    return missing
