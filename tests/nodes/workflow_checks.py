"""Structural checks of UI-format workflow files against node definitions, shared by the unit tests
(definitions from our node classes) and the integration tests (definitions from a real /object_info).

A "definition" is one /object_info entry: ``input`` (required/optional), ``input_order``, ``output``,
``output_name``. Widget values are checked as ComfyUI's validator does (combo membership, INT/FLOAT
ranges) and mapped to input names as the frontend does (seed-like INTs own an extra control value).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

UI_ONLY = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _kind(spec: list | tuple) -> str:
    return "COMBO" if isinstance(spec[0], (list, tuple)) else spec[0]


def _options(spec: list | tuple) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def _choices(spec: list | tuple) -> list:
    """A combo's values: classic nodes list them first, V3 nodes declare ("COMBO", {"options": [...]})."""
    return list(spec[0]) if isinstance(spec[0], (list, tuple)) else list(_options(spec).get("options", []))


def declared_inputs(definition: dict) -> dict[str, tuple[list | tuple, bool]]:
    """name -> (spec, required), in the order of input_order."""
    out = {}
    for section in ("required", "optional"):
        block = definition["input"].get(section, {})
        for name in definition.get("input_order", {}).get(section, list(block)):
            out[name] = (block[name], section == "required")
    return out


def widget_slots(definition: dict) -> list[tuple[str, list | tuple | None]]:
    """(name, spec) per widgets_values entry; the control widget of seed-like INTs has spec None."""
    slots = []
    for name, (spec, _) in declared_inputs(definition).items():
        if _kind(spec) not in WIDGET_TYPES or _options(spec).get("forceInput"):
            continue
        slots.append((name, spec))
        if _kind(spec) == "INT" and (_options(spec).get("control_after_generate") or name in ("seed", "noise_seed")):
            slots.append(("control_after_generate", None))
    return slots


def widget_values(node: dict, definition: dict) -> dict[str, Any]:
    slots = widget_slots(definition)
    values = node.get("widgets_values") or []
    assert len(values) == len(slots), (f"node {node['id']} ({node['type']}): {len(values)} widgets_values for widgets "
                                       f"{[name for name, _ in slots]}")
    return {name: value for (name, _), value in zip(slots, values)}


def check_value(node: dict, name: str, spec, value: Any, allowed_missing: set[str]) -> None:
    where = f"node {node['id']} ({node['type']}).{name}"
    if spec is None:
        assert value in CONTROL_VALUES, f"{where}: control value {value!r}"
        return
    kind, options = _kind(spec), _options(spec)
    if kind == "COMBO":
        if value not in _choices(spec):
            assert value in allowed_missing, f"{where}: {value!r} not in {_choices(spec)[:20]}"
    elif kind in ("INT", "FLOAT"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r}"
        if kind == "INT":
            assert float(value).is_integer(), f"{where}: {value!r} is not an integer"
        assert options.get("min", value) <= value <= options.get("max", value), f"{where}: {value} out of range"
    elif kind == "STRING":
        assert isinstance(value, str), f"{where}: {value!r}"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {value!r}"


def check_workflow(workflow: dict, definitions: dict[str, dict], allowed_missing: set[str] = frozenset(),
                   unchecked_values: set[str] = frozenset()) -> None:
    """Assert that a UI-format workflow is well formed and valid for ``definitions``.

    ``allowed_missing``: combo values (model file names) that may be absent from the lists here,
    because the workflow documents them as models the user adds. ``unchecked_values``: node types
    whose widget values are not checked (their definitions describe sockets and widget order only).
    """
    for key in ("nodes", "links", "last_node_id", "last_link_id", "version"):
        assert key in workflow, f"missing top-level key {key!r}"
    nodes = {node["id"]: node for node in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]), "duplicate node ids"
    assert workflow["last_node_id"] >= max(nodes), "last_node_id is smaller than a node id"
    links = {link[0]: link for link in workflow["links"]}
    assert len(links) == len(workflow["links"]), "duplicate link ids"
    assert workflow["last_link_id"] >= max(links, default=0)
    for node in nodes.values():
        for key in ("id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties",
                    "widgets_values"):
            assert key in node, f"node {node.get('id')} lacks {key!r}"
        assert node["type"] in definitions or node["type"] in UI_ONLY, f"unknown node type {node['type']!r}"

    for lid, src, src_slot, dst, dst_slot, link_type in links.values():
        source, target = nodes[src], nodes[dst]
        out = source["outputs"][src_slot]
        assert out["type"] == link_type, f"link {lid}: output type {out['type']} != {link_type}"
        assert lid in (out.get("links") or []), f"link {lid} missing from node {src} output {src_slot}"
        inp = target["inputs"][dst_slot]
        assert inp.get("link") == lid, f"link {lid}: node {dst} input {dst_slot} has link {inp.get('link')}"
        assert inp["type"] in (link_type, "*"), f"link {lid}: {link_type} into {inp['type']} input {inp['name']}"
        definition = definitions.get(target["type"])
        if definition is not None:
            spec, _ = declared_inputs(definition)[inp["name"]]
            declared = _kind(spec)
            assert declared in (link_type, "*"), (f"link {lid}: {link_type} into {target['type']}.{inp['name']} "
                                                 f"declared as {declared}")
        out_def = definitions.get(source["type"])
        if out_def is not None:
            assert out_def["output"][src_slot] == link_type, f"link {lid}: {source['type']} output {src_slot}"
    for node in nodes.values():
        for inp in node["inputs"]:
            if inp.get("link") is not None:
                assert inp["link"] in links, f"node {node['id']} input {inp['name']} points at missing link"
        for out in node["outputs"]:
            for lid in out.get("links") or []:
                assert links[lid][1] == node["id"], f"node {node['id']} lists link {lid} it does not start"

    for node in nodes.values():
        definition = definitions.get(node["type"])
        if definition is None:
            continue
        declared = declared_inputs(definition)
        linked = {inp["name"] for inp in node["inputs"] if inp.get("link") is not None}
        for inp in node["inputs"]:
            assert inp["name"] in declared, f"node {node['id']} ({node['type']}) has undeclared input {inp['name']}"
        for name, (spec, required) in declared.items():
            socket = _kind(spec) not in WIDGET_TYPES or _options(spec).get("forceInput")
            if socket and required:
                assert name in linked, f"node {node['id']} ({node['type']}): required input {name!r} not connected"
        for name, value in widget_values(node, definition).items():
            if name in linked or node["type"] in unchecked_values:
                continue
            spec = None if name == "control_after_generate" else declared[name][0]
            check_value(node, name, spec, value, allowed_missing)
        names = definition.get("output_name") or definition["output"]
        assert [o["name"] for o in node["outputs"]] == list(names), f"node {node['id']} output names"
        assert [o["type"] for o in node["outputs"]] == list(definition["output"]), f"node {node['id']} output types"


def notes(workflow: dict) -> list[str]:
    return [str(n["widgets_values"][0]) for n in workflow["nodes"] if n["type"] in ("Note", "MarkdownNote")]
