"""Contracts, declared once.

Every table the ingestion writes is described here: which contract fields exist, their
type, and which are required. Validation, the warehouse loader and the documentation are
derived from these declarations; nothing else retypes the field lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CONTRACT_VERSION = "events-v1"


def column_key(name: str) -> str:
    """A column name as it is matched: without a byte-order mark and surrounding whitespace.

    Spreadsheets saving "CSV UTF-8" put a BOM before the first header, so ``\ufeffEmail``
    must still be the configured ``Email``. Applied to every reader's names and to every
    column name in the configuration, so both sides of a match are normalised the same way.
    """
    return name.replace("\ufeff", "").strip()


class Kind(StrEnum):
    """What a source delivers."""

    events = "events"
    accounts = "accounts"
    contacts = "contacts"
    outcomes = "outcomes"


class DType(StrEnum):
    string = "string"
    timestamp = "timestamp"
    float = "float"
    integer = "integer"
    boolean = "boolean"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a contract."""

    name: str
    dtype: DType
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Contract:
    """The fields of one kind of source, plus the key that makes a row unique."""

    kind: Kind
    fields: tuple[FieldSpec, ...]
    key: tuple[str, ...]
    # at least one of these must be present on every row (e.g. contact or account)
    one_of: tuple[str, ...] = ()
    # name of the JSON column that receives the source's unmapped columns
    extras_column: str = "properties"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.kind} contract has no field {name!r}")

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


EVENT_CONTRACT = Contract(
    kind=Kind.events,
    fields=(
        FieldSpec("event_id", DType.string, description="Source's id; derived from content when absent"),
        FieldSpec("occurred_at", DType.timestamp, True, "When it happened, normalised to UTC"),
        FieldSpec("contact_id", DType.string, description="Person, if known"),
        FieldSpec("account_id", DType.string, description="Company, if known"),
        FieldSpec("event_type", DType.string, True, "Raw event name, kept as sent"),
        FieldSpec("channel", DType.string, description="From the source, else the taxonomy"),
        FieldSpec("value", DType.float, description="Amount, duration, score..."),
    ),
    key=("source", "event_id"),
    one_of=("contact_id", "account_id"),
)

ACCOUNT_CONTRACT = Contract(
    kind=Kind.accounts,
    fields=(
        FieldSpec("account_id", DType.string, True),
        FieldSpec("name", DType.string),
        FieldSpec("industry", DType.string),
        FieldSpec("employees", DType.integer),
        FieldSpec("annual_revenue", DType.float),
        FieldSpec("country", DType.string),
        FieldSpec("created_at", DType.timestamp),
    ),
    key=("account_id",),
    extras_column="attributes",
)

CONTACT_CONTRACT = Contract(
    kind=Kind.contacts,
    fields=(
        FieldSpec("contact_id", DType.string, True),
        FieldSpec("account_id", DType.string),
        FieldSpec("email", DType.string, description="Hashed at ingestion, never stored raw"),
        FieldSpec("role", DType.string, description="Role in the buying committee"),
        FieldSpec("opted_out", DType.boolean, description="Consent withdrawn: excluded everywhere"),
        FieldSpec("created_at", DType.timestamp),
    ),
    key=("contact_id",),
    extras_column="attributes",
)

OUTCOME_CONTRACT = Contract(
    kind=Kind.outcomes,
    fields=(
        FieldSpec("outcome_id", DType.string),
        FieldSpec("outcome", DType.string, True, "conversion, churn or a custom name"),
        FieldSpec("occurred_at", DType.timestamp, True),
        FieldSpec("contact_id", DType.string),
        FieldSpec("account_id", DType.string),
        FieldSpec("value", DType.float),
    ),
    key=("source", "outcome_id"),
    one_of=("contact_id", "account_id"),
)

CONTRACTS: dict[Kind, Contract] = {
    c.kind: c for c in (EVENT_CONTRACT, ACCOUNT_CONTRACT, CONTACT_CONTRACT, OUTCOME_CONTRACT)
}

# Journey stages in funnel order (the taxonomy maps event names onto these).
STAGES: tuple[str, ...] = (
    "awareness",
    "consideration",
    "decision",
    "purchase",
    "onboarding",
    "adoption",
    "renewal",
    "churn",
)
