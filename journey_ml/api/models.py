"""Request and response bodies of the HTTP API (pydantic, unknown fields rejected).

The posted rows follow the warehouse contracts of `journey_ml.schemas` (events, the
account's firmographics, contacts, outcome rows); the lengths are the warehouse columns'.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_ID = 128  # journey_ml.db.models.Key()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EventIn(_In):
    """One touchpoint (the event contract). ``stage`` comes from the taxonomy."""

    event_id: str = Field(min_length=1, max_length=_ID)
    source: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime = Field(description="When it happened (ISO 8601 with a time zone).")
    contact_id: str | None = Field(None, min_length=1, max_length=_ID)
    account_id: str | None = Field(None, min_length=1, max_length=_ID)
    event_type: str = Field(min_length=1, max_length=128, description="Raw event name.")
    channel: str | None = Field(None, max_length=64, description="Default: from the taxonomy.")
    value: float | None = None
    properties: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _someone(self) -> EventIn:
        if self.contact_id is None and self.account_id is None:
            raise ValueError("missing contact_id and account_id: at least one is required")
        return self


class AccountIn(_In):
    """The account's firmographics and attributes (its latest export)."""

    account_id: str | None = Field(None, min_length=1, max_length=_ID,
                                   description="Default: the scored account (account tasks).")
    name: str | None = Field(None, max_length=256)
    industry: str | None = Field(None, max_length=128)
    employees: int | None = Field(None, ge=0)
    annual_revenue: float | None = None
    country: str | None = Field(None, max_length=64)
    created_at: AwareDatetime | None = None
    attributes: dict[str, Any] | None = None


class ContactIn(_In):
    """A contact of the entity (for accounts: the buying committee)."""

    contact_id: str = Field(min_length=1, max_length=_ID)
    account_id: str | None = Field(None, min_length=1, max_length=_ID,
                                   description="Default: the scored account (account tasks).")
    email: str | None = Field(None, max_length=320, description="Hashed with the PII key, never stored.")
    role: str | None = Field(None, max_length=64)
    opted_out: bool = False
    created_at: AwareDatetime | None = None
    attributes: dict[str, Any] | None = None


class OutcomeIn(_In):
    """A row of the outcomes table (e.g. a closed deal recorded outside the event stream)."""

    outcome_id: str = Field(min_length=1, max_length=_ID)
    source: str = Field(min_length=1, max_length=64)
    outcome: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime
    contact_id: str | None = Field(None, min_length=1, max_length=_ID)
    account_id: str | None = Field(None, min_length=1, max_length=_ID)
    value: float | None = None
    properties: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _someone(self) -> OutcomeIn:
        if self.contact_id is None and self.account_id is None:
            raise ValueError("missing contact_id and account_id: at least one is required")
        return self


class ScoreRequest(_In):
    """Score one entity as of ``as_of`` from its own rows."""

    task: str = Field(min_length=1, max_length=64, description="A task of the configuration.")
    entity_id: str = Field(min_length=1, max_length=_ID)
    as_of: AwareDatetime | None = Field(None, description="Default: now (UTC).")
    account: AccountIn | None = None
    contacts: list[ContactIn] = Field(default_factory=list)
    events: list[EventIn] = Field(default_factory=list)
    outcomes: list[OutcomeIn] = Field(default_factory=list)


class Reason(BaseModel):
    feature: str
    value: Any = None
    contribution: float
    text: str


class ScoreOut(BaseModel):
    """One score record (the same fields the batch flow stores in ``scores``)."""

    task: str
    entity_id: str
    entity_kind: str
    as_of: AwareDatetime
    probability: float
    band: str
    segment: str | None
    model_name: str | None
    model_version: int | None
    mode: str = Field(description="segment_model | global_model | rules_model | builtin_rules")
    mode_reason: str | None
    reasons: list[Reason]
    action: str | None
    action_holdout: bool
    scored_at: AwareDatetime
    run_id: str | None = None
    stage: str | None = Field(None, description="Predicted current journey stage (None: no journey).")
    next_steps: dict[str, float] | None = Field(
        None, description="P(next step) of the ongoing journey, incl. (conversion) and (exit); None once it ended.")


class ErrorOut(BaseModel):
    error: str
    detail: str
    errors: list[dict[str, Any]] | None = None


__all__ = ["EventIn", "AccountIn", "ContactIn", "OutcomeIn", "ScoreRequest", "Reason", "ScoreOut", "ErrorOut"]
