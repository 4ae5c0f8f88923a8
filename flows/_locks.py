"""One run at a time per task / segment: Prefect global concurrency limits of one slot.

``exclusive("journey-score-conversion")`` holds a slot of each named limit for the block,
creating a missing limit (limit 1) first. Any run on the same Prefect API that asks for
the same name waits for the slot, so two runs of the same step never overlap: the daily
cycle and an on-demand score of one task, or the weekly retrain and an event-triggered
retrain of one segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect.concurrency.sync import concurrency

PREFIX = "journey-"


def lock_name(*parts: str) -> str:
    """``journey-<part>-<part>...`` with characters outside [a-z0-9_-] replaced."""
    return PREFIX + "-".join(re.sub(r"[^a-z0-9_-]+", "_", p.lower()) for p in parts)


def ensure_limits(names: list[str]) -> None:
    """Create each named global concurrency limit with one slot unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        for n in names:
            try:
                client.read_global_concurrency_limit_by_name(n)
            except ObjectNotFound:
                with suppress(ObjectAlreadyExists):  # another run created it meanwhile
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=n, limit=1))


@contextmanager
def exclusive(*names: str) -> Iterator[None]:
    """Hold one slot of every named limit (waiting for it) while the block runs."""
    wanted = sorted(set(names))
    if not wanted:
        yield
        return
    ensure_limits(wanted)
    with concurrency(wanted, occupy=1, strict=True):
        yield
