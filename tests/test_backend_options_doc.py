"""docs/backend_options.md lists exactly the options each backend reads, with the code's defaults, and
the options tables of ``rnr/registry.py`` (``REASONER_OPTIONS`` / ``RESTORER_OPTIONS``, which check
every spec's options) agree with both: same names, same defaults, the documented type.

Text parsing (``ast`` on the sources, regular expressions on the Markdown) plus the light
``rnr.registry`` module: no backend is imported or loaded, so the test takes milliseconds.

Which files belong to a backend: the module the registry (``rnr/registry.py``) names, plus its
siblings ``<module>_*.py`` and packages ``<module>_*/`` (``qwen3vl_parse.py``, ``classic_ops/``...).

What counts as reading an option:

- ``<anything>.option(KEY[, DEFAULT])`` (``ModelSpec.option``);
- ``NAME.get(KEY[, DEFAULT])`` and ``NAME[KEY]`` (read, not assigned) where ``NAME`` holds the spec's
  options: a variable called ``options`` or one assigned from an expression with ``.options`` in it,
  unless that function assigns it a ``{...}`` literal (e.g. the ``model.generate`` keyword dict).

KEY is a string literal, a loop variable over a module-level constant (a tuple of names, or a dict's
keys / ``.items()``), or an f-string of those; any other key fails the test so that it cannot be
missed silently. DEFAULT (absent means ``None``) is a literal or a module-level constant expression.

The document has one ``## Reasoner: `name``` / ``## Restorer: `name``` section per backend; the
options are the backticked first cells of the table rows in that section, and the default cell must
hold the code's default as JSON in backticks (or say "not set" when the code's default is ``None``).
JSON examples (```json blocks) in a section must be objects naming documented options, and the
registry must accept them.
"""

from __future__ import annotations

import ast
import itertools
import json
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from rnr import registry
from rnr.errors import OptionError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backend_options.md"
UNSET = object()
"""A default the test cannot evaluate (the default cell is then not checked)."""


class UnresolvedKey(AssertionError):
    """An option read whose key is not a literal or a loop over a module-level constant."""


@dataclass(frozen=True)
class Read:
    key: str
    default: object
    where: str


# ---- the code ------------------------------------------------------------------------------------
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow}


def _constant(node: ast.AST, constants: dict[str, ast.AST], depth: int = 0) -> object:
    """The value of a literal or constant expression (names: module-level constants), else UNSET."""
    if depth > 10:
        return UNSET
    if isinstance(node, ast.Name):
        return _constant(constants[node.id], constants, depth + 1) if node.id in constants else UNSET
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _constant(node.left, constants, depth + 1), _constant(node.right, constants, depth + 1)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return _BINOPS[type(node.op)](left, right)
        return UNSET
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return UNSET


def _string_collection(node: ast.AST, constants: dict[str, ast.AST]) -> list[str] | None:
    """The names a loop iterates over: ``CONST``, ``CONST.keys()`` or ``CONST.items()`` (first element)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("keys", "items") \
            and not node.args:
        node = node.func.value
    if not isinstance(node, ast.Name) or node.id not in constants:
        return None
    value = constants[node.id]
    if isinstance(value, ast.Dict):
        keys = [_constant(k, constants) for k in value.keys if k is not None]
    elif isinstance(value, (ast.Tuple, ast.List, ast.Set)):
        keys = [_constant(e, constants) for e in value.elts]
    else:
        return None
    return keys if all(isinstance(k, str) for k in keys) else None


def _loop_values(name: str, node: ast.AST, parents: dict[ast.AST, ast.AST],
                 constants: dict[str, ast.AST]) -> list[str] | None:
    """The values ``name`` takes at ``node``: from the nearest enclosing loop or comprehension binding it."""
    current = node
    while current in parents:
        current = parents[current]
        loops = []
        if isinstance(current, (ast.For, ast.AsyncFor)):
            loops = [(current.target, current.iter)]
        elif isinstance(current, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loops = [(g.target, g.iter) for g in current.generators]
        for target, iterable in loops:
            first = target.elts[0] if isinstance(target, ast.Tuple) and target.elts else target
            if isinstance(first, ast.Name) and first.id == name:
                return _string_collection(iterable, constants)
    return None


def _keys(node: ast.AST, parents: dict[ast.AST, ast.AST], constants: dict[str, ast.AST], where: str) -> list[str]:
    """Every option name an option-read key expression can stand for."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        values = _loop_values(node.id, node, parents, constants)
        if values is not None:
            return values
    if isinstance(node, ast.JoinedStr):
        parts: list[list[str]] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append([str(value.value)])
            elif isinstance(value, ast.FormattedValue) and value.conversion == -1 and value.format_spec is None:
                parts.append(_keys(value.value, parents, constants, where))
            else:
                break
        else:
            return ["".join(combination) for combination in itertools.product(*parts)]
    raise UnresolvedKey(f"{where}: option key {ast.unparse(node)!r} is not a string literal or a loop over a "
                        "module-level constant; teach tests/test_backend_options_doc.py to read it")


def _mentions_options(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "options" for n in ast.walk(node))


def _options_names(function: ast.AST) -> set[str]:
    """Variables that hold the spec's options inside one function (see the module docstring)."""
    names = {"options"}
    literal: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    if isinstance(node.value, (ast.Dict, ast.DictComp)):
                        literal.add(target.id)
                    elif _mentions_options(node.value):
                        names.add(target.id)
    return names - literal


def option_reads(source: str, filename: str = "<source>") -> list[Read]:
    """Every option read in one module's source."""
    tree = ast.parse(source, filename)
    constants: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            constants[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            constants[node.target.id] = node.value
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}

    def function_of(node: ast.AST) -> ast.AST:
        while node in parents and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            node = parents[node]
        return node

    reads: list[Read] = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        key_node = default_node = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            arguments = list(node.args) + [None] * 2
            keywords = {k.arg: k.value for k in node.keywords}
            receiver = node.func.value
            if node.func.attr == "option":
                key_node = arguments[0] or keywords.get("key")
                default_node = arguments[1] or keywords.get("default")
            elif node.func.attr == "get" and isinstance(receiver, ast.Name) \
                    and receiver.id in _options_names(function_of(node)):
                key_node, default_node = arguments[0], arguments[1]
            if node.func.attr == "option" and key_node is None:
                raise UnresolvedKey(f"{where}: option read without a key")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                and node.value.id in _options_names(function_of(node)):
            key_node = node.slice
        if key_node is None:
            continue
        default = None if default_node is None else _constant(default_node, constants)
        for key in _keys(key_node, parents, constants, where):
            reads.append(Read(key, default, where))
    return reads


def backend_files() -> dict[tuple[str, str], list[Path]]:
    """(kind, backend) -> the source files of that backend, from the registry's tables."""
    tree = ast.parse((ROOT / "rnr" / "registry.py").read_text())
    tables = {"REASONER_BACKENDS": "reasoner", "RESTORER_BACKENDS": "restorer"}
    files: dict[tuple[str, str], list[Path]] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) \
            else None
        if not isinstance(target, ast.Name) or target.id not in tables:
            continue
        for backend, module in ast.literal_eval(node.value).items():
            base = ROOT.joinpath(*module.split("."))
            paths = [base.with_suffix(".py")]
            for sibling in sorted(base.parent.glob(base.name + "_*")):
                if sibling.is_dir():
                    paths += sorted(sibling.rglob("*.py"))
                elif sibling.suffix == ".py":
                    paths.append(sibling)
            files[(tables[target.id], backend)] = paths
    return files


def code_options(paths: list[Path]) -> dict[str, list[Read]]:
    options: dict[str, list[Read]] = {}
    for path in paths:
        for read in option_reads(path.read_text(), str(path.relative_to(ROOT))):
            options.setdefault(read.key, []).append(read)
    return options


def code_default(reads: list[Read]) -> object:
    """The default of an option read in several places: the one non-None default (None if none)."""
    defaults = {json.dumps(r.default) for r in reads if r.default is not None and r.default is not UNSET}
    assert len(defaults) <= 1, (f"option {reads[0].key!r} is read with different defaults: "
                                + ", ".join(f"{r.where} -> {r.default!r}" for r in reads))
    if any(r.default is UNSET for r in reads) and not defaults:
        return UNSET
    return json.loads(defaults.pop()) if defaults else None


# ---- the document --------------------------------------------------------------------------------
SECTION = re.compile(r"^##\s+(Reasoner|Restorer):\s+`(\w+)`\s*$", re.IGNORECASE)


@dataclass
class Section:
    rows: dict[str, list[str]]
    examples: list[str]


def doc_sections(text: str) -> dict[tuple[str, str], Section]:
    """(kind, backend) -> documented options (name -> table cells) and JSON examples."""
    sections: dict[tuple[str, str], Section] = {}
    current: Section | None = None
    block: list[str] | None = None
    for line in text.splitlines():
        if block is not None:
            if line.strip().startswith("```"):
                if current is not None:
                    current.examples.append("\n".join(block))
                block = None
            else:
                block.append(line)
            continue
        if line.strip().startswith("```json"):
            block = []
            continue
        if line.startswith(("## ", "# ")):
            match = SECTION.match(line)
            current = None
            if match:
                key = (match.group(1).lower(), match.group(2))
                assert key not in sections, f"{DOC.name}: section for the {key[0]} {key[1]!r} appears twice"
                current = sections[key] = Section({}, [])
            continue
        if current is not None and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            name = re.fullmatch(r"`(\w+)`", cells[0])
            if name:
                assert name.group(1) not in current.rows, f"{DOC.name}: option {name.group(1)!r} listed twice"
                current.rows[name.group(1)] = cells
    return sections


DOC_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "text": "text", "path": "path",
             "json": "JSON object"}
"""How the document's type cell starts for each option type of the registry."""


def default_problem(label: str, key: str, default: object, cell: str, source: str) -> str | None:
    """Whether a documented default cell holds ``default`` (as JSON in backticks, or 'not set' for None)."""
    if default is None:
        if not cell.lower().startswith("not set"):
            return f"{label}: {key!r} has no default in {source}; its default cell should say 'not set'"
        return None
    if json.dumps(default) not in re.findall(r"`([^`]*)`", cell):
        return f"{label}: default of {key!r} is {json.dumps(default)} in {source}, the document says {cell!r}"
    return None


def problems(code: dict[str, list[Read]], section: Section | None, label: str) -> list[str]:
    """What is wrong between one backend's code and its section of the document ([] when they agree)."""
    if section is None:
        return [f"{label}: no '## {label.split()[0].capitalize()}: `{label.split()[1]}`' section"]
    found: list[str] = []
    for key in sorted(set(code) - set(section.rows)):
        found.append(f"{label}: option {key!r} is read at {code[key][0].where} but not documented")
    for key in sorted(set(section.rows) - set(code)):
        found.append(f"{label}: option {key!r} is documented but the backend never reads it")
    for key in sorted(set(code) & set(section.rows)):
        cells = section.rows[key]
        if len(cells) != 5:
            found.append(f"{label}: row {key!r} needs 5 cells (option, type, default, what it does, valid values)")
            continue
        default = code_default(code[key])
        problem = None if default is UNSET else default_problem(label, key, default, cells[2], "the code")
        if problem:
            found.append(problem)
    for example in section.examples:
        try:
            value = json.loads(example)
        except json.JSONDecodeError as exc:
            found.append(f"{label}: example is not valid JSON ({exc}): {example}")
            continue
        if not isinstance(value, dict):
            found.append(f"{label}: example is not a JSON object: {example}")
            continue
        for key in value:
            if key not in code:
                found.append(f"{label}: example uses {key!r}, which the backend does not read")
    return found


def table_problems(table: dict[str, registry.Option] | None, code: dict[str, list[Read]], section: Section | None,
                   label: str) -> list[str]:
    """What is wrong between one backend's options table in the registry, its code and its document."""
    if table is None:
        return [(f"{label}: no options table in rnr/registry.py (add the backend to REASONER_OPTIONS / "
                 "RESTORER_OPTIONS, with {} when it takes none)")]
    found: list[str] = []
    for key in sorted(set(code) - set(table)):
        found.append(f"{label}: option {key!r} is read at {code[key][0].where} but missing from the registry table")
    for key in sorted(set(table) - set(code)):
        found.append(f"{label}: option {key!r} is in the registry table but the backend never reads it")
    for key in sorted(set(table) & set(code)):
        default = code_default(code[key])
        if default is not UNSET and default != table[key].default:
            found.append(f"{label}: default of {key!r} is {default!r} in the code, {table[key].default!r} in the "
                         "registry table")
    rows = section.rows if section is not None else {}
    for key in sorted(set(table) - set(rows)):
        found.append(f"{label}: option {key!r} is in the registry table but not documented")
    for key in sorted(set(rows) - set(table)):
        found.append(f"{label}: option {key!r} is documented but not in the registry table")
    for key in sorted(set(table) & set(rows)):
        cells = rows[key]
        if len(cells) != 5:
            continue  # reported by problems()
        option = table[key]
        if not cells[1].startswith(DOC_TYPES[option.type]):
            found.append(f"{label}: {key!r} is a {option.type} option in the registry, the document's type cell "
                         f"says {cells[1]!r} (should start with {DOC_TYPES[option.type]!r})")
        problem = default_problem(label, key, option.default, cells[2], "the registry table")
        if problem:
            found.append(problem)
    return found


# ---- tests ---------------------------------------------------------------------------------------
FILES = backend_files()


def test_registry_is_read():
    assert {("reasoner", "classic"), ("reasoner", "lite"), ("reasoner", "qwen3vl"), ("restorer", "classic"),
            ("restorer", "lite"), ("restorer", "qwen_image_edit")} <= set(FILES)
    names = {p.name for p in FILES[("restorer", "qwen_image_edit")]}
    assert {"qwen_image_edit.py", "qwen_image_edit_load.py"} <= names
    assert "qwen3vl_parse.py" in {p.name for p in FILES[("reasoner", "qwen3vl")]}


def test_known_reads_are_found():
    """The collector sees the reads it must: literals, defaults, loops and f-strings over constants."""
    reasoner = code_options(FILES[("reasoner", "qwen3vl")])
    assert code_default(reasoner["max_pixels"]) == 1024 * 1024
    assert code_default(reasoner["merge_adapter"]) is True  # read with and without a default
    assert code_default(reasoner["adapter"]) is None
    assert "stopping_criteria" not in reasoner and "pad_token_id" not in reasoner  # model.generate's own dict
    restorer = code_options(FILES[("restorer", "qwen_image_edit")])
    assert {"transformer_file", "text_encoder_file", "vae_file", "tokenizer", "config", "variant"} <= set(restorer)
    assert code_default(restorer["max_megapixels"]) == pytest.approx(1.048576)
    assert code_options(FILES[("reasoner", "classic")]) == {}


@pytest.mark.parametrize("kind,backend", sorted(FILES))
def test_document_matches_code(kind, backend):
    sections = doc_sections(DOC.read_text())
    found = problems(code_options(FILES[(kind, backend)]), sections.get((kind, backend)), f"{kind} {backend}")
    assert found == [], "\n".join(found)


def test_document_has_no_stray_backend_sections():
    assert set(doc_sections(DOC.read_text())) <= set(FILES)


@pytest.mark.parametrize("kind,backend", sorted(FILES))
def test_registry_table_matches_code_and_document(kind, backend):
    sections = doc_sections(DOC.read_text())
    found = table_problems(registry.declared_options(kind, backend), code_options(FILES[(kind, backend)]),
                           sections.get((kind, backend)), f"{kind} {backend}")
    assert found == [], "\n".join(found)


def test_registry_tables_name_registered_backends_only():
    for kind, table in registry.OPTIONS.items():
        assert set(table) == set(registry.KINDS[kind]), kind


@pytest.mark.parametrize("kind,backend", sorted(FILES))
def test_document_examples_are_accepted(kind, backend):
    """Each JSON example of the document is taken as written by the spec check (no OptionError)."""
    section = doc_sections(DOC.read_text()).get((kind, backend))
    for example in section.examples if section else []:
        try:
            registry.check_options(kind, backend, json.loads(example))
        except OptionError as exc:
            pytest.fail(f"{kind} {backend}: example {example} is refused: {exc}")


SAMPLE_DOC = """
## Restorer: `demo`

| option | type | default | what it does | valid values |
|---|---|---|---|---|
| `tile` | integer | `512` | tile side | >= 1 |
| `ghost` | integer | `1` | read nowhere | any |

```json
{"tile": 256, "typo": 1}
```
"""

SAMPLE_SOURCE = '''
DEFAULT_TILE = 256
NAMES = ("alpha", "beta")

def load(spec):
    generate = {"max_new_tokens": 1}
    generate["stopping_criteria"] = None
    for name in NAMES:
        spec.option(f"{name}_file")
    return spec.option("tile", DEFAULT_TILE), spec.option("made_up_option", 3), generate["max_new_tokens"]
'''


def test_drift_is_reported():
    """A made-up option in code, a documented option never read, a wrong default and a bad example all fail."""
    code: dict[str, list[Read]] = {}
    for read in option_reads(SAMPLE_SOURCE):
        code.setdefault(read.key, []).append(read)
    assert set(code) == {"tile", "made_up_option", "alpha_file", "beta_file"}
    found = problems(code, doc_sections(SAMPLE_DOC)[("restorer", "demo")], "restorer demo")
    text = "\n".join(found)
    assert "'made_up_option' is read at <source>:10 but not documented" in text
    assert "'alpha_file' is read" in text and "'beta_file' is read" in text
    assert "'ghost' is documented but the backend never reads it" in text
    assert "default of 'tile' is 256 in the code" in text
    assert "example uses 'typo'" in text
    assert len(found) == 6
    assert problems(code, None, "restorer demo") == ["restorer demo: no '## Restorer: `demo`' section"]


def test_registry_drift_is_reported():
    """A table that lacks a read option, lists one never read, disagrees on a default or on the type fails."""
    code: dict[str, list[Read]] = {}
    for read in option_reads(SAMPLE_SOURCE):
        code.setdefault(read.key, []).append(read)
    table = {"tile": registry.Option("int", 512), "alpha_file": registry.Option("path"),
             "beta_file": registry.Option("bool"), "ghost": registry.Option("int", 1),
             "made_up_option": registry.Option("int", 3)}
    found = table_problems(table, code, doc_sections(SAMPLE_DOC)[("restorer", "demo")], "restorer demo")
    text = "\n".join(found)
    assert "option 'ghost' is in the registry table but the backend never reads it" in text
    assert "default of 'tile' is 256 in the code, 512 in the registry table" in text
    assert "'alpha_file' is in the registry table but not documented" in text
    assert "'made_up_option' is in the registry table but not documented" in text
    assert len(found) == 5, text
    del table["made_up_option"]
    assert "option 'made_up_option' is read at <source>:10 but missing from the registry table" in "\n".join(
        table_problems(table, code, None, "restorer demo"))
    doc = SAMPLE_DOC.replace("| `tile` | integer |", "| `tile` | number |")
    found = table_problems({"tile": registry.Option("int", 512)}, {}, doc_sections(doc)[("restorer", "demo")], "x")
    assert any("'tile' is a int option in the registry, the document's type cell says 'number'" in f for f in found)
    assert table_problems(None, code, None, "restorer demo")[0].startswith("restorer demo: no options table")


def test_unreadable_key_fails_loudly():
    with pytest.raises(UnresolvedKey, match="option key 'key'"):
        option_reads("def load(spec, key):\n    return spec.option(key)\n")
