"""Typed search attributes every incident keeps current, so lists and reports come from
Temporal visibility instead of reading histories.

SQL visibility (the dev server's SQLite, PostgreSQL, MySQL) has fixed slots per namespace:
10 Keyword and 3 each of Datetime, Int, Double, Bool, Text, KeywordList. This module is the
budget; add a key here and nowhere else. Used so far: Keyword 5/10, Datetime 3/3, Int 1/3.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeIndexedValueType as IndexedType
from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
SERVICE = SearchAttributeKey.for_keyword("IncidentService")
COMMANDER = SearchAttributeKey.for_keyword("IncidentCommander")
TEAM = SearchAttributeKey.for_keyword("IncidentTeam")
DECLARED_AT = SearchAttributeKey.for_datetime("IncidentDeclaredAt")
ACKNOWLEDGED_AT = SearchAttributeKey.for_datetime("IncidentAcknowledgedAt")
RESOLVED_AT = SearchAttributeKey.for_datetime("IncidentResolvedAt")
# The Datetime slots are spent; further times are epoch seconds.
MITIGATED_AT_EPOCH = SearchAttributeKey.for_int("IncidentMitigatedAtEpoch")

ALL: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    STATUS,
    SEVERITY,
    SERVICE,
    COMMANDER,
    TEAM,
    DECLARED_AT,
    ACKNOWLEDGED_AT,
    RESOLVED_AT,
    MITIGATED_AT_EPOCH,
)

# The names the Temporal CLI uses for `--search-attribute Name=Type`.
_CLI_TYPE = {
    IndexedType.KEYWORD: "Keyword",
    IndexedType.DATETIME: "Datetime",
    IndexedType.INT: "Int",
    IndexedType.TEXT: "Text",
    IndexedType.BOOL: "Bool",
    IndexedType.DOUBLE: "Double",
    IndexedType.KEYWORD_LIST: "KeywordList",
}


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` arguments for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type]}"]
    return flags
