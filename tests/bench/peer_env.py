"""Virtual environments for the benchmark's peers, made on first use.

A peer (a package we compare against but do not depend on) runs in its own virtual
environment under ``.journey/bench/peers/<name>``, created with the project's ``uv`` the
first time a benchmark needs it, so ``make bench`` runs the peers with no setup. An
environment variable naming another interpreter takes precedence (a pinned venv of your
own); when neither works the benchmark says the peer was not run and why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(".journey/bench/peers")


def peer_python(name: str, packages: list[str], env_var: str) -> tuple[str | None, str]:
    """(interpreter, how it was found) for peer ``name``; (None, why) when it cannot be had."""
    given = os.environ.get(env_var)
    if given:
        return (given, f"{env_var}") if Path(given).exists() else (None, f"{env_var}={given} does not exist")
    venv = ROOT / name
    py = venv / "bin" / "python"
    marker = venv / ".installed"
    want = " ".join(packages)
    if py.exists() and marker.exists() and marker.read_text() == want:
        return str(py), f"venv {venv}"
    uv = Path(sys.executable).with_name("uv")
    uv_cmd = [str(uv)] if uv.exists() else [sys.executable, "-m", "uv"]
    try:
        subprocess.run([*uv_cmd, "venv", "-q", "--clear", "-p", f"{sys.version_info.major}.{sys.version_info.minor}",
                        str(venv)], check=True, capture_output=True, text=True, timeout=600)
        subprocess.run([*uv_cmd, "pip", "install", "-q", "-p", str(py), *packages], check=True,
                       capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        err = getattr(e, "stderr", None) or str(e)
        return None, f"could not install {want} into {venv}: {err.strip().splitlines()[-1] if err.strip() else e}"
    marker.write_text(want)
    return str(py), f"venv {venv} (installed {want})"
