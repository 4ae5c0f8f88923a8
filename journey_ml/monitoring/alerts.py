"""Alerts for monitoring decisions: Apprise URLs, plus a JSON-lines file sink.

Any Apprise URL works (``slack://``, ``msteams://``, ``mailto://``, ``json://host/path`` for a
generic webhook...). ``file:///path/alerts.jsonl`` appends one JSON object per alert to a
local file (the demo's default and what tests read). A failed delivery never fails the
monitoring run: it is returned as a `Delivery` with the error.
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
    report: str | None = None  # path of the drift (or performance) report
    outcome: str | None = None  # what executing the decision did

    @property
    def title(self) -> str:
        return f"journey-ml {self.decision}: {self.task}/{self.segment} as of {self.as_of:%Y-%m-%d}"

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
    kind = apprise.NotifyType.FAILURE if alert.decision in ("fallback", "rollback", "error") else \
        apprise.NotifyType.WARNING if alert.decision != "restore" else apprise.NotifyType.SUCCESS
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


__all__ = ["Alert", "Delivery", "send", "read_file_alerts", "file_path", "redact"]
