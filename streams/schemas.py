"""JSON Schemas of every topic's messages, generated from :mod:`streams.messages`, and the check
that a schema changed compatibly (or its ``schema_version`` was bumped).

``python -m streams.schemas`` rewrites ``docs/schemas/<name>.json`` (the current schemas, for
producers' and consumers' own CI) and writes ``docs/schemas/versions/<name>.v<N>.json`` the
first time version N exists. Version files are never rewritten: each is the baseline that later
schemas of the same version must stay compatible with (:func:`breaking_changes`).
``--check`` only reports whether the files are current.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from streams.messages import MESSAGES, Message

DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: Keys that document and never constrain: changing them is always compatible.
_DOCUMENTATION = frozenset({"title", "description", "$comment", "examples", "$id", "$schema"})

#: Where ``python -m streams.schemas`` writes (the repository's docs).
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schema_of(message: type[Message]) -> dict[str, Any]:
    """The standalone JSON Schema (draft 2020-12) of one message struct."""
    generated = msgspec.json.schema(message)
    definitions = generated.get("$defs", {})
    name = generated["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "x-schema-version": message.VERSION,
        **definitions.pop(name),
    }
    if definitions:
        schema["$defs"] = definitions
    return _tidy(schema)


def _tidy(node: Any) -> Any:
    """Descriptions on one line (docstrings keep their indentation in msgspec's output)."""
    if isinstance(node, dict):
        return {
            key: " ".join(value.split())
            if key == "description" and isinstance(value, str)
            else _tidy(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every message's schema, by name (:data:`streams.messages.MESSAGES`)."""
    return {name: schema_of(message) for name, message in MESSAGES.items()}


def deployment_schemas(
    features: tuple[str, ...], key_field: str | None, max_abs_feature: float
) -> dict[str, dict[str, Any]]:
    """The schemas of one deployment: ``features`` each required and bounded by
    ``max_abs_feature`` in outcomes and requests, and the ``key_field`` (when it is not a
    standard field) required as a non-empty string."""
    schemas = all_schemas()
    for name in ("trade-outcome", "signal-request"):
        schema = copy.deepcopy(schemas[name])
        number = {"type": "number", "minimum": -max_abs_feature, "maximum": max_abs_feature}
        schema["properties"]["features"] = {
            "type": "object",
            "description": "every configured feature (model.features), each finite",
            "properties": {feature: dict(number) for feature in features},
            "required": list(features),
        }
        if key_field is not None and key_field not in schema["properties"]:
            schema["properties"][key_field] = {
                "type": "string",
                "minLength": 1,
                "description": "the model key (model.key_field); also the record key",
            }
            schema["required"] = [*schema["required"], key_field]
        schemas[name] = schema
    return schemas


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How ``new`` breaks ``old`` (empty when compatible).

    Compatible: new optional properties, changed documentation. Everything else -- a property
    removed, a type, bound, pattern, enum or default changed, a property made required or
    optional -- is breaking.
    """
    return list(_differences(old, new, "$"))


def _differences(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        old_keys = set(old) - _DOCUMENTATION
        new_keys = set(new) - _DOCUMENTATION
        for key in sorted(old_keys - new_keys):
            yield f"{path}: {key!r} removed"
        for key in sorted(new_keys - old_keys):
            if key not in ("properties", "required"):
                yield f"{path}: {key!r} added"
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name in sorted(new_required - old_required):
            yield f"{path}: {name!r} became required"
        for name in sorted(old_required - new_required):
            yield f"{path}: {name!r} is no longer required"
        old_properties, new_properties = old.get("properties", {}), new.get("properties", {})
        for name in sorted(set(old_properties) - set(new_properties)):
            yield f"{path}.{name}: removed"
        for name in sorted(set(old_properties) & set(new_properties)):
            yield from _differences(old_properties[name], new_properties[name], f"{path}.{name}")
        for key in sorted((old_keys & new_keys) - {"properties", "required"}):
            yield from _differences(old[key], new[key], f"{path}/{key}")
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            yield f"{path}: {old!r} became {new!r}"
        else:
            for index, (before, after) in enumerate(zip(old, new, strict=True)):
                yield from _differences(before, after, f"{path}[{index}]")
    elif old != new or type(old) is not type(new):
        yield f"{path}: {old!r} became {new!r}"


def rendered(schema: dict[str, Any]) -> str:
    """A schema as written to its file (stable key order, two-space indent)."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path, schemas: dict[str, dict[str, Any]]) -> list[Path]:
    """Write ``<name>.json`` per schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas.items():
        path = directory / f"{name}.json"
        path.write_text(rendered(schema))
        written.append(path)
    return written


def version_file(directory: Path, name: str, version: int) -> Path:
    """Where the baseline of ``name`` at ``version`` is kept."""
    return directory / "versions" / f"{name}.v{version}.json"


def breaking_without_bump(directory: Path, schemas: dict[str, dict[str, Any]]) -> list[str]:
    """The breaking changes of ``schemas`` against their version's baseline in ``directory``
    (a schema whose version has no baseline yet has none)."""
    found = []
    for name, schema in schemas.items():
        baseline = version_file(directory, name, schema["x-schema-version"])
        if baseline.exists():
            for change in breaking_changes(json.loads(baseline.read_text()), schema):
                found.append(
                    f"{name}: {change} -- a breaking change needs a schema_version bump "
                    "(streams/messages.py)"
                )
    return found


def stale(directory: Path = DOCS_DIR) -> list[str]:
    """What is out of date in ``directory`` (empty: every file is current and every schema is
    compatible with its version's baseline)."""
    schemas = all_schemas()
    problems = []
    for name, schema in schemas.items():
        current = directory / f"{name}.json"
        if not current.exists() or current.read_text() != rendered(schema):
            problems.append(f"{current} is not the generated schema")
        baseline = version_file(directory, name, schema["x-schema-version"])
        if not baseline.exists():
            problems.append(f"{baseline} is missing")
    return problems + breaking_without_bump(directory, schemas)


def main(argv: list[str] | None = None) -> int:
    """Regenerate docs/schemas (``--check``: only say what is out of date)."""
    parser = argparse.ArgumentParser(prog="python -m streams.schemas", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument("--dir", type=Path, default=DOCS_DIR, help="target directory")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.dir)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    schemas = all_schemas()
    breaking = breaking_without_bump(args.dir, schemas)
    if breaking:
        for change in breaking:
            print(change, file=sys.stderr)
        return 1
    write(args.dir, schemas)
    for name, schema in schemas.items():
        baseline = version_file(args.dir, name, schema["x-schema-version"])
        if not baseline.exists():
            baseline.parent.mkdir(parents=True, exist_ok=True)
            baseline.write_text(rendered(schema))
    print(f"wrote {len(schemas)} schemas to {args.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
