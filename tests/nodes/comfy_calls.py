"""Call the pack's nodes the way ComfyUI v0.3.64 does, without ComfyUI installed.

- :func:`load_pack` imports the repository root as ComfyUI's ``load_custom_node`` does (a module named
  after the folder path, loaded from ``__init__.py``) and reads ``NODE_CLASS_MAPPINGS``.
- :func:`node_info` is the ``/object_info`` entry ``server.py`` builds for a classic node.
- :func:`call` validates inputs like ``execution.validate_inputs`` (required inputs present, link types
  match, INT/FLOAT/STRING converted and range-checked, combo values in their lists), passes them as
  keyword arguments (optional inputs that are not connected are simply absent), calls ``FUNCTION`` on
  a fresh instance and checks that every output has its declared type.
- :func:`frontend_widget_values` is what the frontend stores in a node's ``widgets_values``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
_PACK = None


def load_pack():
    """The pack as ComfyUI imports it (once per test session)."""
    global _PACK
    if _PACK is None:
        module_path = str(REPO_ROOT)
        name = module_path.replace(".", "_x_")
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "__init__.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _PACK = module
    return _PACK


def mappings() -> dict[str, type]:
    return load_pack().NODE_CLASS_MAPPINGS


def pack_module(name: str):
    """A submodule of the loaded pack, e.g. ``pack_module("nodes._convert")``."""
    return sys.modules[f"{load_pack().__name__}.{name}"]


def node_info(name: str) -> dict:
    """What ComfyUI's /object_info says about a classic node (server.py ``node_info``)."""
    cls = mappings()[name]
    inputs = cls.INPUT_TYPES()
    info = {
        "input": inputs,
        "input_order": {key: list(value.keys()) for key, value in inputs.items()},
        "output": cls.RETURN_TYPES,
        "output_is_list": getattr(cls, "OUTPUT_IS_LIST", [False] * len(cls.RETURN_TYPES)),
        "output_name": getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES),
        "name": name,
        "display_name": load_pack().NODE_DISPLAY_NAME_MAPPINGS.get(name, name),
        "description": getattr(cls, "DESCRIPTION", ""),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = cls.OUTPUT_TOOLTIPS
    return info


def input_type(spec: tuple) -> str:
    """``"COMBO"`` for a list of choices, else the declared type name."""
    return "COMBO" if isinstance(spec[0], (list, tuple)) else spec[0]


def is_widget(spec: tuple) -> bool:
    options = spec[1] if len(spec) > 1 else {}
    return input_type(spec) in WIDGET_TYPES and not options.get("forceInput", False)


def all_inputs(cls) -> dict[str, tuple]:
    types = cls.INPUT_TYPES()
    return {**types.get("required", {}), **types.get("optional", {})}


def widget_defaults(cls) -> dict[str, Any]:
    """Every widget input at its default, as the frontend shows a freshly added node."""
    out = {}
    for name, spec in all_inputs(cls).items():
        if not is_widget(spec):
            continue
        options = spec[1] if len(spec) > 1 else {}
        if input_type(spec) == "COMBO":
            out[name] = options.get("default", spec[0][0])
        else:
            out[name] = options.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[spec[0]])
    return out


def has_control_after_generate(name: str, spec: tuple) -> bool:
    """The frontend adds a 'control after generate' widget after these INT inputs."""
    options = spec[1] if len(spec) > 1 else {}
    return input_type(spec) == "INT" and (options.get("control_after_generate") or name in ("seed", "noise_seed"))


def frontend_widget_values(cls, values: dict[str, Any] | None = None, control: str = "fixed") -> list:
    """``widgets_values`` as the frontend saves it: widget inputs in declaration order (required then
    optional), with the control-after-generate value after seed-like INTs."""
    merged = {**widget_defaults(cls), **(values or {})}
    out = []
    for name, spec in all_inputs(cls).items():
        if not is_widget(spec):
            continue
        out.append(merged[name])
        if has_control_after_generate(name, spec):
            out.append(control)
    return out


@dataclass(frozen=True)
class Link:
    """A value on a wire, with the wire's type (what a node output carries)."""

    value: Any
    type: str


class Outputs(tuple):
    """A node's outputs; ``out[i]`` / ``out.name`` give a :class:`Link` to wire into the next node."""

    def __new__(cls, values, types, names):
        self = super().__new__(cls, values)
        self.types, self.names = tuple(types), tuple(names)
        return self

    def link(self, key: int | str) -> Link:
        index = key if isinstance(key, int) else self.names.index(key)
        return Link(self[index], self.types[index])

    def __getattr__(self, key: str) -> Link:
        if key in ("types", "names"):
            raise AttributeError(key)
        try:
            return self.link(key)
        except ValueError:
            raise AttributeError(key) from None


class ValidationError(AssertionError):
    """An input ComfyUI would reject before running the graph."""


def _check_value(type_name: str, value: Any, where: str) -> None:
    """Assert that ``value`` is what a wire of ``type_name`` carries."""
    from rnr.diagnosis import Diagnosis

    if type_name == "IMAGE":
        assert isinstance(value, torch.Tensor), f"{where}: IMAGE must be a tensor, got {type(value).__name__}"
        assert value.ndim == 4 and value.shape[-1] in (1, 3, 4), f"{where}: IMAGE shape {list(value.shape)}"
        assert value.dtype == torch.float32 and value.device.type == "cpu", f"{where}: {value.dtype} {value.device}"
        assert bool(torch.isfinite(value).all()) and float(value.min()) >= 0 and float(value.max()) <= 1, where
    elif type_name == "STRING":
        assert isinstance(value, str), f"{where}: STRING must be str, got {type(value).__name__}"
    elif type_name == "FLOAT":
        assert isinstance(value, float) and math.isfinite(value), f"{where}: FLOAT must be a float, got {value!r}"
    elif type_name == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: INT must be int, got {value!r}"
    elif type_name == "RNR_DIAGNOSIS":
        assert isinstance(value, list) and value and all(isinstance(d, Diagnosis) for d in value), \
            f"{where}: RNR_DIAGNOSIS must be a non-empty list of Diagnosis, got {value!r}"
    elif type_name in ("RNR_REASONER", "RNR_RESTORER"):
        handle_type = pack_module("nodes.loaders").ModelHandle
        assert isinstance(value, handle_type), f"{where}: {type_name} must be a ModelHandle, got {value!r}"
        assert value.spec.kind == ("reasoner" if type_name == "RNR_REASONER" else "restorer"), where


def validate(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ComfyUI would pass, or :class:`ValidationError` as its validator reports."""
    cls = mappings()[name]
    declared = cls.INPUT_TYPES()
    required, optional = declared.get("required", {}), declared.get("optional", {})
    unknown = set(inputs) - set(required) - set(optional)
    if unknown:
        raise ValidationError(f"{name}: inputs {sorted(unknown)} are not declared")
    kwargs = {}
    for key, spec in {**required, **optional}.items():
        if key not in inputs:
            if key in required:
                raise ValidationError(f"{name}: required input '{key}' is missing")
            continue
        value = inputs[key]
        kind = input_type(spec)
        options = spec[1] if len(spec) > 1 else {}
        if isinstance(value, Link):
            if value.type != kind and not (kind == "COMBO" and value.type == "COMBO"):
                raise ValidationError(f"{name}.{key}: received_type({value.type}) mismatch input_type({kind})")
            kwargs[key] = value.value
            continue
        if not is_widget(spec):
            # A raw value for a socket input stands for a wire of the declared type.
            _check_value(kind, value, f"{name}.{key}")
            kwargs[key] = value
            continue
        if kind == "INT":
            value = int(value)
        elif kind == "FLOAT":
            value = float(value)
        elif kind == "STRING":
            value = str(value)
        elif kind == "BOOLEAN":
            value = bool(value)
        if kind in ("INT", "FLOAT"):
            if "min" in options and value < options["min"]:
                raise ValidationError(f"{name}.{key}: Value {value} smaller than min of {options['min']}")
            if "max" in options and value > options["max"]:
                raise ValidationError(f"{name}.{key}: Value {value} bigger than max of {options['max']}")
        if kind == "COMBO" and value not in spec[0]:
            raise ValidationError(f"{name}.{key}: Value not in list: '{value}' not in {list(spec[0])}")
        kwargs[key] = value
    return kwargs


def call(name: str, *, defaults: bool = True, **inputs: Any) -> Outputs:
    """Run node ``name`` as ComfyUI does; ``defaults`` fills unset widgets as the frontend would."""
    cls = mappings()[name]
    if defaults:
        inputs = {**widget_defaults(cls), **inputs}
    kwargs = validate(name, inputs)
    result = getattr(cls(), cls.FUNCTION)(**kwargs)
    if isinstance(result, dict):
        result = result.get("result", ())
    assert isinstance(result, tuple), f"{name} returned {type(result).__name__}, ComfyUI expects a tuple"
    assert len(result) == len(cls.RETURN_TYPES), f"{name} returned {len(result)} values for {cls.RETURN_TYPES}"
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    for value, type_name, out_name in zip(result, cls.RETURN_TYPES, names):
        _check_value(type_name, value, f"{name} output '{out_name}'")
    return Outputs(result, cls.RETURN_TYPES, names)
