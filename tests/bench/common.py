"""Benchmark plumbing: fresh PostgreSQL databases, child processes with peak memory, medians."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("JOURNEY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"


def fresh_database(prefix: str = "journey_bench") -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_conninfo(PG_ADMIN_URL), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_conninfo(PG_ADMIN_URL), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def conninfo(url: str) -> str:
    return _conninfo(url)


@dataclass
class Measure:
    seconds: float
    peak_rss_mb: float
    output: dict = field(default_factory=dict)


def run_child(args: list[str], env: dict | None = None) -> Measure:
    """Run a Python module in a child process; wall time, its peak RSS and its JSON output.

    The child is started through ``tests.bench.measure`` so peak memory is that child's
    alone, not the maximum over every child this process ever started.
    """
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "tests.bench.measure", *args], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({' '.join(args)}):\n{p.stderr[-3000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1])
    return Measure(seconds=report.get("seconds", seconds), peak_rss_mb=report["peak_rss_mb"],
                   output=report.get("output", {}))


def self_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)
