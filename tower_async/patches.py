"""Corrections for known defects of the Platform's published OpenAPI documents.

:func:`apply_patches` is called once by the loader, before the document is cached,
so the bound operations, the validators and openapi-core (in the tests) all see the
corrected document.  Every patch is generic (it looks for a defect's shape, not for a
document version), idempotent, and listed in :data:`PATCHES` with the reason for it:

==========================  =====================================================================
name                        what it corrects
==========================  =====================================================================
``params-any-value``        ``params`` maps declared ``additionalProperties: {type: object}``
                            (``Workflow``, ``WorkflowDbDto``, ``LaunchActionRequest``): real
                            pipeline parameters are strings, numbers, booleans, lists and
                            objects, so the values become ``{}`` (any JSON value).
``error-oneof-anyof``       a ``oneOf`` of error shapes in a 4xx/5xx response (the 400 of
                            ``POST /workflow/launch``) that every error body matches twice
                            (``{"message"}`` fits both): ``oneOf`` becomes ``anyOf``.
``nullable-combinator``     ``nullable: true`` next to ``allOf``/``oneOf``/``anyOf`` without a
                            ``type``: OpenAPI 3.0.3 ignores ``nullable`` there, so openapi-core
                            and a literal reading reject ``null``; the combinators move into an
                            ``anyOf`` with an explicit null alternative.
``nullable-enum-null``      ``nullable: true`` enums whose list lacks ``null``: ``enum``
                            is checked after ``type``, so ``null`` is rejected; ``null`` is
                            appended to the list.
``java-regex``              Java-only regex syntax in ``pattern`` (1.85.0 to 1.102.0:
                            ``[\\p{Graph}&&[^/]]\\p{Graph}+``): rewritten to the equivalent
                            ECMA-262 class ``[!-~]`` (Java's ``\\p{Graph}`` is ASCII ``!``..``~``)
                            and the class intersection spelled out.
``iterator-as-array``       Java ``Iterator<T>`` component schemas published as an empty
                            ``type: object`` (``Iterator_String_``, the ``entries`` of a
                            ``GetWorkflowLog`` page): Jackson writes an iterator as a JSON
                            array, so they become ``type: array`` of ``T``.
==========================  =====================================================================

The document carries no ``servers`` block either; that is not patched here because the
session always takes the endpoint from its own argument or ``TOWER_API_ENDPOINT``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["NULL_ALTERNATIVE", "PATCHES", "apply_patches"]

#: The explicit null alternative ``nullable-combinator`` adds (OpenAPI 3.0 has no
#: ``type: null``; ``nullable`` + ``enum: [null]`` is its spelling of "only null").
NULL_ALTERNATIVE: dict[str, Any] = {"type": "object", "nullable": True, "enum": [None]}

_COMBINATORS = ("allOf", "oneOf", "anyOf")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a JSON tree, parents before children (iterative)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list):
            stack.extend(reversed(current))


def _schemas(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    components = document.get("components")
    if isinstance(components, dict):
        yield from _walk(components)
    paths = document.get("paths")
    if isinstance(paths, dict):
        yield from _walk(paths)


def _params_any_value(document: dict[str, Any]) -> bool:
    changed = False
    for node in _schemas(document):
        props = node.get("properties")
        if not isinstance(props, dict):
            continue
        params = props.get("params")
        if not isinstance(params, dict):
            continue
        extra = params.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("type") == "object" and len(extra) == 1:
            params["additionalProperties"] = {}
            changed = True
    return changed


def _error_oneof_anyof(document: dict[str, Any]) -> bool:
    changed = False
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return False
    for item in paths.values():
        if not isinstance(item, dict):
            continue
        for op in item.values():
            responses = op.get("responses") if isinstance(op, dict) else None
            if not isinstance(responses, dict):
                continue
            for status, response in responses.items():
                if str(status)[:1] not in ("4", "5") or not isinstance(response, dict):
                    continue
                content = response.get("content")
                if not isinstance(content, dict):
                    continue
                for media in content.values():
                    schema = media.get("schema") if isinstance(media, dict) else None
                    if (
                        isinstance(schema, dict)
                        and isinstance(schema.get("oneOf"), list)
                        and "discriminator" not in schema
                    ):
                        schema["anyOf"] = schema.pop("oneOf")
                        changed = True
    return changed


def _nullable_combinator(document: dict[str, Any]) -> bool:
    changed = False
    for node in list(_schemas(document)):
        if node.get("nullable") is not True or "type" in node or "$ref" in node:
            continue
        present = [k for k in _COMBINATORS if k in node]
        if not present or "discriminator" in node:
            continue
        if not all(isinstance(node[k], list) for k in present):
            continue  # not a schema this patch understands; the validator reports it
        if present == ["anyOf"] and NULL_ALTERNATIVE in node["anyOf"]:
            continue  # already patched
        inner = {k: node.pop(k) for k in present}
        if list(inner) == ["anyOf"]:
            node["anyOf"] = [*inner["anyOf"], dict(NULL_ALTERNATIVE)]
        elif list(inner) == ["allOf"] and len(inner["allOf"]) == 1:
            node["anyOf"] = [inner["allOf"][0], dict(NULL_ALTERNATIVE)]
        else:
            node["anyOf"] = [inner, dict(NULL_ALTERNATIVE)]
        changed = True
    return changed


def _nullable_enum_null(document: dict[str, Any]) -> bool:
    changed = False
    for node in _schemas(document):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
            changed = True
    return changed


# Java's \p{Graph} is US-ASCII graphic characters, 0x21-0x7E ("!" to "~").
_JAVA_PATTERNS = {
    r"[\p{Graph}&&[^/]]\p{Graph}+": r"[!-.0-~][!-~]+",
}
_P_GRAPH_IN_CLASS = re.compile(r"(?<=\[)((?:[^\]\\]|\\.)*?)\\p\{Graph\}")


def _java_regex(document: dict[str, Any]) -> bool:
    changed = False
    for node in _schemas(document):
        pattern = node.get("pattern")
        if not isinstance(pattern, str) or "\\p{" not in pattern:
            continue
        fixed = _JAVA_PATTERNS.get(pattern)
        if fixed is None and "&&" not in pattern:
            # \p{Graph} inside a class becomes the range, outside it becomes a class.
            fixed = _P_GRAPH_IN_CLASS.sub(r"\1!-~", pattern).replace(r"\p{Graph}", "[!-~]")
        if fixed is not None and fixed != pattern:
            node["pattern"] = fixed
            changed = True
    return changed


_ITERATOR = re.compile(r"^Iterator_(\w+?)_$")
_JAVA_ITEM_TYPES: dict[str, dict[str, Any]] = {
    "String": {"type": "string"},
    "Long": {"type": "integer", "format": "int64"},
    "Integer": {"type": "integer", "format": "int32"},
    "Boolean": {"type": "boolean"},
}


def _iterator_as_array(document: dict[str, Any]) -> bool:
    components = document.get("components")
    schemas = components.get("schemas") if isinstance(components, dict) else None
    if not isinstance(schemas, dict):
        return False
    changed = False
    for name, schema in schemas.items():
        match = _ITERATOR.match(str(name))
        if not match or not isinstance(schema, dict) or schema.get("type") != "object":
            continue
        if set(schema) - {"type", "description"}:
            continue  # it describes properties: not the empty placeholder
        item = match.group(1)
        if item in _JAVA_ITEM_TYPES:
            items: dict[str, Any] = dict(_JAVA_ITEM_TYPES[item])
        elif item in schemas:
            items = {"$ref": f"#/components/schemas/{item}"}
        else:
            items = {}
        schema["type"] = "array"
        schema["items"] = items
        changed = True
    return changed


#: name -> patch function (returns True when it changed something), in application order.
PATCHES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "params-any-value": _params_any_value,
    "error-oneof-anyof": _error_oneof_anyof,
    "nullable-combinator": _nullable_combinator,
    "nullable-enum-null": _nullable_enum_null,
    "java-regex": _java_regex,
    "iterator-as-array": _iterator_as_array,
}


def apply_patches(document: dict[str, Any]) -> list[str]:
    """Correct known defects of published documents in place; return the patches applied.

    Returns the names (keys of :data:`PATCHES`) of the patches that changed something.
    Idempotent: a second call on the same document changes nothing and returns ``[]``.
    """
    applied = []
    for name, patch in PATCHES.items():
        if patch(document):
            applied.append(name)
    return applied
