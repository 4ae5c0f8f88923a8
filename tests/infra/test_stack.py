"""`make up` / `make down` for real (infra/stack.sh), on free loopback ports, a temporary stack
directory and databases of its own (#10.5, #10.8, #9 cases 12 and 13).

One stack per module: the README's "Run it in production" block is run line by line in one
bash session (so `eval "$(make -s up)"` exports what the later lines use), then the stack's
promises are checked against the running servers: anonymous writes refused, the stack's
credentials accepted, secrets and logs private and free of secrets, and after `make down`
no process is left.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import _admin_conninfo

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SERVICES = ("mlflow", "prefect", "api", "worker")
DB_SUFFIXES = ("journey", "mlflow", "mlflow_auth", "prefect")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("psql") is None, reason="infra/stack.sh needs psql")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_block() -> list[str]:
    """The commands of README's tested block (comments stripped)."""
    text = README.read_text()
    m = re.search(r"<!-- tests/infra/test_stack.py runs this block[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert m, "README lost its tested 'Run it in production' block"
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in m.group(1).splitlines() if line.strip()]


def secret_values(stack_dir: Path) -> dict[str, str]:
    out = {}
    for line in (stack_dir / "secrets.env").read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep and not k.startswith("#"):
            out[k] = v
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Runs the README block up to (not including) `make -s down`, keeps the session's env
    and output, and tears everything down at the end (drops the databases too)."""
    tmp = tmp_path_factory.mktemp("stack")
    stack_dir = tmp / "stack"
    prefix = f"jml_st_{uuid.uuid4().hex[:6]}_"
    ports = {"MLFLOW_PORT": free_port(), "PREFECT_PORT": free_port(), "API_PORT": free_port()}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JOURNEY_", "PREFECT_", "MLFLOW_TRACKING"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(STACK_DIR=str(stack_dir), STACK_DB_PREFIX=prefix, STACK_TIMEOUT="900",
               PREFECT_HOME=str(tmp / "prefect-cli"), PATH=f"{REPO / '.venv' / 'bin'}:{env['PATH']}")
    lines = readme_block()
    assert lines[0].startswith('eval "$(make -s up)"') and lines[-1].startswith("make -s down")
    outputs: dict[str, subprocess.CompletedProcess] = {}
    env_file = tmp / "session.env"
    script = ["set -o pipefail"]
    for i, line in enumerate(lines[:-1]):
        # each line's output in its own files, so the test can look at every one of them
        script.append(f"( {line} ) >{tmp}/out{i} 2>{tmp}/err{i} || {{ echo \"line {i} failed: $?\" >&2; "
                      f"env -0 >{env_file}; exit 1; }}")
        if i == 0:
            script.append(f"env -0 >{env_file}")
    # `( ... )` would lose the exports of the eval, and `eval "$(cmd)"` hides cmd's failure:
    # run the same command, keep its status, then eval its output
    up = re.fullmatch(r'eval "\$\((.*)\)"', lines[0])
    assert up, lines[0]
    script[1] = (f"_up=\"$({up.group(1)} 2>{tmp}/err0)\" || {{ echo 'make up failed' >&2; cat {tmp}/err0 >&2; "
                 f"exit 1; }}; printf '%s\\n' \"$_up\" >{tmp}/out0; eval \"$_up\"")
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=1800)
    for i, line in enumerate(lines[:-1]):
        if (tmp / f"out{i}").exists():
            outputs[line] = subprocess.CompletedProcess(line, 0, (tmp / f"out{i}").read_text(),
                                                        (tmp / f"err{i}").read_text())
    session = dict(kv.split("=", 1) for kv in env_file.read_text().split("\0") if "=" in kv) \
        if env_file.exists() else {}
    pids = {s: int((stack_dir / f"{s}.pid").read_text()) for s in SERVICES if (stack_dir / f"{s}.pid").exists()}
    info = dict(tmp=tmp, dir=stack_dir, env=env, ports=ports, prefix=prefix, outputs=outputs,
                session=session, pids=pids, result=r, down=None)
    try:
        yield info
    finally:
        if info["down"] is None:
            subprocess.run(["bash", "infra/stack.sh", "down"], cwd=REPO, env=env, capture_output=True,
                           timeout=300)
        for pid in pids.values():  # nothing may survive, even when a test failed midway
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
            for d in DB_SUFFIXES:
                admin.execute(f'DROP DATABASE IF EXISTS "{prefix}{d}" WITH (FORCE)')


def _ok(stack) -> None:
    r = stack["result"]
    if r.returncode != 0:
        tail = "\n".join(f"--- {k}\n{v.stdout[-2000:]}\n{v.stderr[-3000:]}" for k, v in stack["outputs"].items())
        pytest.fail(f"README block failed: {r.stderr[-2000:]}\n{tail}")


def test_readme_production_block_runs_and_uses_the_stack(stack):
    _ok(stack)
    out = stack["outputs"]
    lines = readme_block()
    home = stack["dir"] / "journey-home"
    # the exports: the worker's home, the servers, the credentials (sourced, not printed)
    s = stack["session"]
    assert s["JOURNEY_HOME"] == str(home)
    assert s["PREFECT_API_URL"] == f"http://127.0.0.1:{stack['ports']['PREFECT_PORT']}/api"
    assert s["MLFLOW_TRACKING_URI"] == s["JOURNEY_MLFLOW_TRACKING_URI"] == \
        f"http://127.0.0.1:{stack['ports']['MLFLOW_PORT']}"
    assert s["JOURNEY_DATABASE_URL"].endswith(f"/{stack['prefix']}journey")
    assert s["JOURNEY_PII_SALT"] and s["MLFLOW_TRACKING_PASSWORD"] and s["PREFECT_API_AUTH_STRING"]
    # simulate wrote where the worker reads, and the worker's ingest run loaded it
    assert any((home / "exports").rglob("*.csv")) or any((home / "exports").iterdir())
    watched = out[lines[5]]
    assert "Completed" in watched.stdout + watched.stderr, watched.stdout + watched.stderr
    with psycopg.connect(_admin_conninfo().replace("dbname=postgres", f"dbname={stack['prefix']}journey")) as c:
        assert c.execute("SELECT count(*) FROM events").fetchone()[0] > 0
    assert all(d in out[lines[4]].stdout for d in ("journey-cycle", "journey-ingest", "journey-score"))
    assert "up" in out[lines[1]].stdout and "down" not in out[lines[1]].stdout
    # credentials: printed by `make credentials` only
    secrets = secret_values(stack["dir"])
    creds = out[lines[2]].stdout
    assert secrets["MLFLOW_TRACKING_PASSWORD"] in creds and secrets["JOURNEY_API_TOKEN"] in creds
    for line, r in out.items():
        if line == lines[2]:
            continue
        for key, value in secrets.items():
            if key != "MLFLOW_TRACKING_USERNAME":
                assert value not in r.stdout + r.stderr, f"`{line}` shows {key}"


def test_anonymous_writes_are_refused_authenticated_ones_work(stack):
    _ok(stack)
    secrets = secret_values(stack["dir"])
    mlflow = f"http://127.0.0.1:{stack['ports']['MLFLOW_PORT']}"
    prefect = f"http://127.0.0.1:{stack['ports']['PREFECT_PORT']}/api"
    create = {"name": f"probe-{uuid.uuid4().hex[:6]}"}
    r = httpx.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json=create, timeout=30)
    assert r.status_code in (401, 403), r.text
    r = httpx.get(f"{mlflow}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=30)
    assert r.status_code in (401, 403)  # closed for reading too
    r = httpx.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json=create, timeout=30,
                   auth=("admin", "not-the-password-at-all"))
    assert r.status_code in (401, 403)
    r = httpx.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json=create, timeout=30,
                   auth=(secrets["MLFLOW_TRACKING_USERNAME"], secrets["MLFLOW_TRACKING_PASSWORD"]))
    assert r.status_code == 200 and r.json()["experiment_id"]

    flow = {"name": f"probe-{uuid.uuid4().hex[:6]}"}
    r = httpx.post(f"{prefect}/flows/", json=flow, timeout=30)
    assert r.status_code in (401, 403), r.text
    r = httpx.post(f"{prefect}/flows/", json=flow, timeout=30, auth=("admin", "wrong"))
    assert r.status_code in (401, 403)
    user, _, pw = secrets["PREFECT_API_AUTH_STRING"].partition(":")
    r = httpx.post(f"{prefect}/flows/", json=flow, timeout=30, auth=(user, pw))
    assert r.status_code in (200, 201) and r.json()["name"] == flow["name"]
    # the scoring API wants its token
    api = f"http://127.0.0.1:{stack['ports']['API_PORT']}"
    assert httpx.post(f"{api}/v1/score", json={}, timeout=30).status_code == 401


def test_servers_listen_on_loopback_only(stack):
    _ok(stack)
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
    if not out:
        pytest.skip("ss not available")
    for port in stack["ports"].values():
        local = [line.split()[3] for line in out.splitlines() if line.split()[3].endswith(f":{port}")]
        assert local and all(a.startswith("127.0.0.1:") for a in local), local


def test_secrets_and_logs_are_private_and_logs_hold_no_secret(stack):
    _ok(stack)
    d = stack["dir"]
    assert stat.S_IMODE((d / "secrets.env").stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    logs = list(d.glob("*.log*"))
    assert {p.stem for p in logs} >= set(SERVICES)
    secrets = {k: v for k, v in secret_values(d).items() if k != "MLFLOW_TRACKING_USERNAME"}
    for log in logs:
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
        text = log.read_text(errors="replace")
        for key, value in secrets.items():
            assert value not in text, f"{log.name} contains {key}"
    # nor on any command line (ps shows those to every user)
    for pid in stack["pids"].values():
        group = subprocess.run(["ps", "-o", "args=", "-g", str(pid)], capture_output=True, text=True).stdout
        assert group.strip()
        for key, value in secrets.items():
            assert value not in group, f"a command line shows {key}"


def test_make_down_leaves_no_process_behind(stack):
    _ok(stack)
    pids = stack["pids"]
    assert set(pids) == set(SERVICES)
    r = subprocess.run(readme_block()[-1], shell=True, cwd=REPO, env=stack["env"], capture_output=True,
                       text=True, timeout=300)
    stack["down"] = r
    assert r.returncode == 0, r.stderr
    for name, pid in pids.items():
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
            pytest.fail(f"{name} (process group {pid}) still runs")
    for port in stack["ports"].values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
    assert not list(stack["dir"].glob("*.pid"))
