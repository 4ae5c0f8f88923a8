"""Alerts for monitoring decisions: Apprise URLs, plus a JSON-lines file sink.

Any Apprise URL works (``slack://``, ``msteams://``, ``mailto://``, ``json://host/path`` for a
generic webhook...). ``file:///path/alerts.jsonl`` appends one JSON object per alert to a
local file (the demo's default and what tests read). A failed delivery never fails the
monitoring run: it is returned as a `Delivery` with the error.

One alert per segment and condition (drift, performance, estimated performance, contract,
rules mode...) until its state changes: `plan` compares the conditions of this run with those
of the segment's previous run; a condition that stays as it was is not sent again, one that
clears gets a ``recovered`` message.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

_FILE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Alert:
    """One alert: a segment, the decision, the key figures, where the report is."""

    task: str
    segment: str
    as_of: datetime
    decision: str  # the decision kind (alert, retrain, fallback, rollback, restore, error)
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # "journey-<task>-<segment> v3"
    report: str | None = None  # file:// URI of the rendered drift (or performance) report
    outcome: str | None = None  # what executing the decision did
    condition: str = ""  # what it is about (see `journey_ml.monitoring.policy.condition`)
    severity: str = ""  # critical | warning | info
    state: str = "firing"  # firing | recovered

    @property
    def title(self) -> str:
        what = f"{self.condition} recovered" if self.state == "recovered" else \
            f"{self.decision}" + (f" ({self.condition})" if self.condition and self.condition != self.decision else "")
        return (f"journey-ml [{self.severity or severity(self.decision)}] {what}: {self.task}/{self.segment} "
                f"as of {self.as_of:%Y-%m-%d}")

    def body(self) -> str:
        lines = [*self.reasons]
        if self.outcome:
            lines.append(f"done: {self.outcome}")
        figs = ", ".join(f"{k}={_fmt(v)}" for k, v in self.figures.items() if v is not None and not isinstance(v, list))
        if figs:
            lines.append(f"figures: {figs}")
        if self.model:
            lines.append(f"model: {self.model}")
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        d["title"] = self.title
        return d


@dataclass(frozen=True)
class Delivery:
    """Whether one alert reached one URL (the URL is shown without credentials)."""

    url: str
    ok: bool
    error: str | None = None


# decision kind -> severity; a condition's alert takes its strongest decision
SEVERITY = {"error": "critical", "fallback": "critical", "rollback": "critical", "retrain": "warning",
            "alert": "warning", "restore": "info", "recovered": "info"}
_STRENGTH = {"alert": 1, "retrain": 2, "restore": 3, "rollback": 4, "fallback": 4, "error": 5}
# conditions that clear (a recovery message is sent); rollback and restore are one-off moves
RECOVERABLE = frozenset({"drift", "performance", "estimated_performance", "contract", "rules_mode", "error"})


def severity(kind: str) -> str:
    """critical | warning | info for a decision kind."""
    return SEVERITY.get(kind, "warning")


def strongest(kinds: list[str]) -> str:
    """The decision kind that names a condition's alert (fallback over retrain over alert)."""
    return max(kinds, key=lambda k: _STRENGTH.get(k, 0))


@dataclass(frozen=True)
class Plan:
    """What to send for one segment: conditions that changed, those left unsent, those cleared."""

    send: list[str]  # conditions firing now whose state changed (new, or a different decision)
    unchanged: list[str]  # firing as before: not sent again
    recovered: list[str]  # firing in the previous run, cleared now


def plan(previous: dict[str, str], current: dict[str, str], *, superseded: frozenset[str] = frozenset()) -> Plan:
    """``previous``/``current``: condition -> strongest decision kind, for the segment's previous
    run and this one (``ok`` left out). ``superseded``: cleared conditions that get no recovery
    message (e.g. a model's performance once production has fallen back to the rules)."""
    send = [c for c, k in current.items() if previous.get(c) != k or c not in RECOVERABLE]
    unchanged = [c for c in current if c not in send]
    recovered = [c for c in previous if c not in current and c in RECOVERABLE and c not in superseded]
    return Plan(send, unchanged, recovered)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def redact(url: str) -> str:
    """The URL's scheme and host only: alert URLs often embed tokens."""
    p = urlparse(url)
    if p.scheme == "file":
        return url
    return f"{p.scheme}://{p.hostname or ''}/..."


def file_path(url: str) -> Path:
    """The local path of a ``file://`` URL; raises ValueError for another scheme."""
    p = urlparse(url)
    if p.scheme != "file":
        raise ValueError(f"not a file:// URL: {url!r}")
    return Path(unquote(p.netloc + p.path))


def _to_file(url: str, alert: Alert) -> None:
    path = file_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(alert.to_dict(), default=str, sort_keys=True)
    with _FILE_LOCK, path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _to_apprise(url: str, alert: Alert) -> None:
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        raise ValueError("not a valid Apprise URL")
    level = "info" if alert.state == "recovered" else alert.severity or severity(alert.decision)
    kind = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
        level, apprise.NotifyType.SUCCESS)
    if not sender.notify(title=alert.title, body=alert.body(), notify_type=kind):
        raise RuntimeError("the service did not accept the notification")


def send(urls: list[str], alert: Alert) -> list[Delivery]:
    """Send ``alert`` to every URL; never raises, each delivery says whether it worked."""
    out = []
    for url in urls:
        try:
            (_to_file if url.startswith("file://") else _to_apprise)(url, alert)
            out.append(Delivery(redact(url), True))
        except Exception as e:  # noqa: BLE001 - an alert channel must not break monitoring
            out.append(Delivery(redact(url), False, f"{type(e).__name__}: {e}"))
    return out


def read_file_alerts(path: str | Path) -> list[dict[str, Any]]:
    """The alerts a ``file://`` sink has written, oldest first (empty when none)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text("utf-8").splitlines() if line.strip()]


__all__ = ["Alert", "Delivery", "Plan", "plan", "severity", "strongest", "SEVERITY", "RECOVERABLE", "send", "read_file_alerts", "file_path", "redact"]
