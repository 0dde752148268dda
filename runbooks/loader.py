"""Load and validate runbook files, reporting every problem with its file, step and field.

Per file: YAML syntax (a key given twice is an error, not last-one-wins; dates stay text),
one mapping per file, the schema of ``runbooks.schema`` (unknown keys, types, durations,
matchers, conditions, the analysis grammar), then its cross checks (step ids, references,
goto targets) and, when ``known_actions`` is given, that every action is one the worker
registers. Across files: runbook names are unique.

The cross checks run even when parts of a file are invalid: every step is validated on its
own and the valid ones are checked, so one pass reports every error rather than the first.
Each error reads ``runbooks/x.yaml: steps[2] (rollback).with.revision: <problem>``.

Exceptions::

    RunbookLoadError (ValueError)   a runbook is invalid; ``errors`` holds every RunbookError
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from runbooks.schema import (
    DEFER_CROSS_CHECK,
    DISCRIMINATOR_TAGS,
    ActionStep,
    Loc,
    Problem,
    Runbook,
    Step,
    StepSlot,
    cross_check,
    format_loc,
    kind_of,
)

__all__ = [
    "RunbookError",
    "RunbookLoadError",
    "json_schema",
    "load_runbooks",
    "parse_runbook",
    "runbook_files",
    "validate_runbooks",
]


@dataclass(frozen=True)
class RunbookError:
    """One problem: the file, the step (``steps[2] (rollback)``) if any, the field, what."""

    file: str
    step: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = ".".join(part for part in (self.step, self.field) if part)
        return f"{self.file}: {where}: {self.message}" if where else f"{self.file}: {self.message}"


class RunbookLoadError(ValueError):
    """Some runbook is invalid; one line per problem, all of them in ``errors``."""

    def __init__(self, errors: Sequence[RunbookError]) -> None:
        super().__init__("\n".join(map(str, errors)))
        self.errors = tuple(errors)


# --- public API ----------------------------------------------------------------------------


def validate_runbooks(
    paths: Iterable[str | Path], *, known_actions: Collection[str] | None = None
) -> list[RunbookError]:
    """Every problem in these files and directories (``*.yaml`` inside), in file order."""
    return _check_all(paths, known_actions)[1]


def load_runbooks(
    paths: Iterable[str | Path], *, known_actions: Collection[str] | None = None
) -> dict[str, Runbook]:
    """The runbooks in these files and directories by name; RunbookLoadError if any is bad."""
    runbooks, errors = _check_all(paths, known_actions)
    if errors:
        raise RunbookLoadError(errors)
    return runbooks


def parse_runbook(
    text: str, file: str = "<runbook>", *, known_actions: Collection[str] | None = None
) -> Runbook:
    """One runbook from YAML text; RunbookLoadError naming ``file`` if it is invalid."""
    checked = _check_text(text, file, known_actions)
    if checked.runbook is None or checked.errors:
        raise RunbookLoadError(checked.errors)
    return checked.runbook


def runbook_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[RunbookError]]:
    """Expand directories to their ``*.yaml`` files, sorted; a missing path is an error."""
    files: list[Path] = []
    errors: list[RunbookError] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                errors.append(RunbookError(str(path), None, "", "no *.yaml runbook files here"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            errors.append(RunbookError(str(path), None, "", "no such file or directory"))
    return files, errors


def json_schema() -> dict[str, Any]:
    """JSON Schema of a runbook file, for editors (``fireline runbook schema``)."""
    schema = Runbook.model_json_schema()
    schema["title"] = "fireline runbook"
    schema["description"] = "One runbook: match, parameters, steps, on_failure."
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# --- files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    runbook: Runbook | None
    # The runbook's name when it can be read, even from an invalid file.
    name: str | None
    errors: list[RunbookError]


def _check_all(
    paths: Iterable[str | Path], known_actions: Collection[str] | None
) -> tuple[dict[str, Runbook], list[RunbookError]]:
    files, errors = runbook_files(paths)
    runbooks: dict[str, Runbook] = {}
    owners: dict[str, str] = {}
    for path in files:
        checked = _check_file(path, known_actions)
        errors += checked.errors
        if checked.name is None:
            continue
        if checked.name in owners:
            errors.append(
                RunbookError(
                    str(path),
                    None,
                    "name",
                    f"runbook name {checked.name!r} is already used by {owners[checked.name]}",
                )
            )
            continue
        owners[checked.name] = str(path)
        if checked.runbook is not None and not checked.errors:
            runbooks[checked.name] = checked.runbook
    return runbooks, errors


def _check_file(path: Path, known_actions: Collection[str] | None) -> _Checked:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _Checked(None, None, [RunbookError(str(path), None, "", f"cannot read: {exc}")])
    return _check_text(text, str(path), known_actions)


def _check_text(text: str, file: str, known_actions: Collection[str] | None) -> _Checked:
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        return _Checked(None, None, [RunbookError(file, None, "", _yaml_problem(exc))])
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"found {kind_of(data)}"
        message = f"a runbook file holds one mapping (name, steps, ...); {found}"
        return _Checked(None, None, [RunbookError(file, None, "", message)])
    problems: list[Problem] = []
    runbook: Runbook | None = None
    try:
        runbook = Runbook.model_validate(data, context={DEFER_CROSS_CHECK: True})
    except ValidationError as exc:
        problems += _schema_problems(exc)
    slots, parameters = _slots(runbook, data)
    if known_actions is not None:
        problems += _unknown_actions(slots, known_actions)
    problems += cross_check(slots, parameters)
    problems.sort(key=lambda p: _order(p.loc))
    errors = [_error(file, data, p) for p in problems]
    name = data.get("name") if runbook is None else runbook.name
    return _Checked(runbook, name if isinstance(name, str) and name else None, errors)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"invalid YAML: {exc}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects repeated keys and reads dates and times as text."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key; construct_mapping reports it
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in this mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Runbooks have no date values; an unquoted 2024-05-01 stays the text the author wrote.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# --- problems --------------------------------------------------------------------------------

_STEP = TypeAdapter[Step](Step)
_TOP_LEVEL = tuple(Runbook.model_fields)


def _schema_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in DISCRIMINATOR_TAGS and p != "[key]")
        problems.append(Problem(loc, _schema_message(err["type"], err["loc"], err)))
    return problems


def _schema_message(kind: str, loc: Loc, err: Mapping[str, Any]) -> str:
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, found {kind_of(err['input'])}"
    if kind == "list_type":
        return f"expected a list, found {kind_of(err['input'])}"
    if kind == "invalid-json-value":
        return f"expected JSON data, found {kind_of(err['input'])}"
    return str(err["msg"]).removeprefix("Value error, ")


def _slots(
    runbook: Runbook | None, data: Mapping[str, Any]
) -> tuple[list[StepSlot], set[str] | None]:
    if runbook is not None:
        return runbook.step_slots(), set(runbook.parameters)
    slots = []
    steps = data.get("steps")
    if isinstance(steps, list):
        slots += [_slot(("steps", i), raw) for i, raw in enumerate(steps)]
    handler = data.get("on_failure")
    if isinstance(handler, dict) and isinstance(handler.get("run"), list):
        slots += [_slot(("on_failure", "run", i), raw) for i, raw in enumerate(handler["run"])]
    # Names as written, even where a declaration is invalid, so no reference is reported as
    # undeclared because of an unrelated mistake.
    parameters = data.get("parameters", {})
    return slots, {str(name) for name in parameters} if isinstance(parameters, dict) else None


def _slot(loc: Loc, raw: Any) -> StepSlot:
    step_id = raw.get("id") if isinstance(raw, dict) else None
    try:
        step: Step | None = _STEP.validate_python(raw)
    except ValidationError:
        step = None  # its own errors are in the schema problems already
    return StepSlot(loc, step_id if isinstance(step_id, str) else None, step)


def _unknown_actions(slots: Sequence[StepSlot], known: Collection[str]) -> list[Problem]:
    problems = []
    for slot in slots:
        if not isinstance(slot.step, ActionStep) or slot.step.action in known:
            continue
        message = f"unknown action {slot.step.action!r}: the worker has no such action"
        close = difflib.get_close_matches(slot.step.action, sorted(known), n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        problems.append(Problem((*slot.loc, "action"), message))
    return problems


def _order(loc: Loc) -> tuple[int, int]:
    """Top-level field order, then step position, so errors read from the top of the file."""
    head = _TOP_LEVEL.index(loc[0]) if loc and loc[0] in _TOP_LEVEL else -1
    index = next((part for part in loc[1:3] if isinstance(part, int)), -1)
    return head, index


def _error(file: str, data: Mapping[str, Any], problem: Problem) -> RunbookError:
    loc = problem.loc
    if loc[:1] == ("steps",) and len(loc) >= 2 and isinstance(loc[1], int):
        prefix = loc[:2]
    elif loc[:2] == ("on_failure", "run") and len(loc) >= 3 and isinstance(loc[2], int):
        prefix = loc[:3]
    else:
        return RunbookError(file, None, format_loc(loc), problem.message)
    step_id = _raw_id(data, prefix)
    label = format_loc(prefix) + (f" ({step_id})" if step_id else "")
    return RunbookError(file, label, format_loc(loc[len(prefix) :]), problem.message)


def _raw_id(data: Any, loc: Loc) -> str | None:
    for part in loc:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and part < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    step_id = data.get("id") if isinstance(data, dict) else None
    return step_id if isinstance(step_id, str) else None
