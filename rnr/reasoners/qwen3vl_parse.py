"""Read a Diagnosis out of a language model's answer, repairing the faults models make.

:func:`parse_answer` finds the last JSON object of the answer that looks like a Diagnosis (the last
```json block first, else anywhere in the text), reads it with a lenient parser and hands the result
to :mod:`.qwen3vl_repair` for the field-level fixes, then validates it with
:func:`rnr.diagnosis.from_dict`.

The lenient parser reads JSON and what models write instead of it: code fences, ``//``, ``#`` and
``/* */`` comments, single-quoted strings, Python ``True``/``False``/``None`` and tuples, bare words
as keys or values, trailing or missing commas, ``60/100`` and ``60%`` numbers, and objects cut off at
the end of the text (the missing closing brackets are implied). Whatever it cannot read raises
:class:`AnswerParseError`, which carries the raw answer.
"""

from __future__ import annotations

import re
from typing import Any

from ..diagnosis import DEGRADATIONS, Diagnosis, from_dict
from ..diagnosis.model import MAX_REASONING_CHARS
from ..errors import DiagnosisError, RnRError

RAW_SHOWN_CHARS = 1500


class AnswerParseError(RnRError):
    """A model answer holds no readable Diagnosis; ``raw`` is the full answer text."""

    def __init__(self, reason: str, raw: str) -> None:
        self.reason = reason
        self.raw = raw
        shown = raw if len(raw) <= RAW_SHOWN_CHARS else raw[:RAW_SHOWN_CHARS] + f"... ({len(raw)} characters in all)"
        super().__init__(f"the reasoner's answer holds no valid Diagnosis: {reason}. Raw answer:\n{shown}")


class _SyntaxFault(Exception):
    pass


_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_OPEN_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
_WORDS = {"true": True, "false": False, "null": None, "none": None, "yes": True, "no": False,
          "nan": None, "infinity": None, "undefined": None}
_FENCE_RE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)


class _Reader:
    """A lenient recursive-descent reader of JSON-like text starting at ``pos``."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos

    # ---- characters --------------------------------------------------------------------------
    def _skip_space_and_comments(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif text.startswith("//", self.pos) or ch == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                self.pos = n if end < 0 else end + 2
            else:
                return

    def peek(self) -> str:
        self._skip_space_and_comments()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # ---- values ------------------------------------------------------------------------------
    def value(self) -> Any:
        ch = self.peek()
        if ch == "{":
            return self.obj()
        if ch and ch in "[(":
            return self.array()
        if ch in _OPEN_QUOTES:
            return self.string()
        if ch and (ch.isdigit() or ch in "+-."):
            return self.number()
        match = _WORD_RE.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            word = match.group(0)
            return _WORDS.get(word.lower(), word)
        raise _SyntaxFault(f"unexpected {ch!r}" if ch else "the text ends where a value should be")

    def obj(self) -> dict:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                continue
            if ch in ("}", ""):
                self.pos += 1
                return result
            if ch in "])":
                raise _SyntaxFault(f"{ch!r} closes an object")
            key = self.value()
            if isinstance(key, (dict, list)):
                raise _SyntaxFault("an object key must be a name")
            if self.peek() not in (":", "="):
                raise _SyntaxFault(f"no ':' after the key {key!r}")
            self.pos += 1
            result[str(key) if key is not None else "null"] = self.value()

    def array(self) -> list:
        closer = "]" if self.text[self.pos] == "[" else ")"
        self.pos += 1
        items: list[Any] = []
        while True:
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                continue
            if ch in (closer, ""):
                self.pos += 1
                return items
            if ch in "]})":
                raise _SyntaxFault(f"{ch!r} closes a list")
            items.append(self.value())

    def string(self) -> str:
        closer = _OPEN_QUOTES[self.text[self.pos]]
        self.pos += 1
        out: list[str] = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < n:
                nxt = text[self.pos + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[self.pos + 2:self.pos + 6]):
                    out.append(chr(int(text[self.pos + 2:self.pos + 6], 16)))
                    self.pos += 6
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                self.pos += 2
                continue
            if ch == closer:
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        return "".join(out)

    def number(self) -> float | int:
        match = _NUMBER_RE.match(self.text, self.pos)
        if not match:
            raise _SyntaxFault(f"unexpected {self.text[self.pos]!r}")
        self.pos = match.end()
        value = _to_number(match.group(0))
        rest = self.text[self.pos:self.pos + 12]
        ratio = re.match(r"\s*/\s*(\d+(?:\.\d+)?)", rest)
        if ratio and float(ratio.group(1)) > 0:
            self.pos += ratio.end()
            return value / float(ratio.group(1)) * 100.0
        if rest.startswith("%"):
            self.pos += 1
        return value


def _to_number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and re.fullmatch(r"[-+]?\d+", text) else value


def read_lenient(text: str, start: int = 0) -> tuple[Any, int]:
    """The JSON-like value at ``text[start:]`` and the index after it (raises ``ValueError``)."""
    reader = _Reader(text, start)
    try:
        value = reader.value()
    except (_SyntaxFault, RecursionError) as exc:
        raise ValueError(str(exc)) from None
    return value, min(reader.pos, len(text))


def _looks_like_diagnosis(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    keys = {str(k).strip().lower() for k in value}
    if keys & set(DEGRADATIONS):
        return True
    return any(_looks_like_diagnosis(v) for v in value.values() if isinstance(v, dict))


def find_diagnosis_object(text: str) -> tuple[dict, int] | None:
    """The last Diagnosis-like object of ``text`` and where it starts (``None`` when there is none).

    The last fenced code block that holds one wins; otherwise the whole text is searched.
    """
    regions: list[tuple[int, int]] = []
    for match in _FENCE_RE.finditer(text):
        regions.append((match.start(1), match.end(1)))
    regions.reverse()
    regions.append((0, len(text)))
    for begin, end in regions:
        found: tuple[dict, int] | None = None
        region = text[:end]
        pos = region.find("{", begin)
        while pos >= 0:
            try:
                value, after = read_lenient(region, pos)
            except ValueError:
                pos = region.find("{", pos + 1)
                continue
            if _looks_like_diagnosis(value):
                found = (value, pos)
                pos = region.find("{", max(after, pos + 1))
            else:
                pos = region.find("{", pos + 1)
        if found is not None:
            return found
    return None


def _prose_before(text: str, start: int) -> str:
    before = text[:start]
    before = re.sub(r"```[A-Za-z]*\s*$", "", before.rstrip())
    return before.strip()


def parse_answer(text: str, source: str = "qwen3vl") -> Diagnosis:
    """The Diagnosis in a model's answer, repaired where possible; :class:`AnswerParseError` otherwise.

    ``reasoning`` becomes the chain of thought written before the JSON (unless the JSON has its own),
    ``source`` is set to ``source``.
    """
    from .qwen3vl_repair import normalize

    if not isinstance(text, str):
        raise AnswerParseError(f"expected the answer as text, got {type(text).__name__}", repr(text))
    if not text.strip():
        raise AnswerParseError("the answer is empty", text)
    found = find_diagnosis_object(text)
    if found is None:
        raise AnswerParseError("no JSON object with the fields haze, rain, noise and blur was found", text)
    data, start = found
    try:
        fixed = normalize(data)
    except DiagnosisError as exc:
        raise AnswerParseError(str(exc), text) from None
    if not fixed.get("reasoning"):
        fixed["reasoning"] = _prose_before(text, start)
    fixed["reasoning"] = str(fixed["reasoning"])[:MAX_REASONING_CHARS]
    fixed["source"] = source
    try:
        return from_dict(fixed)
    except DiagnosisError as exc:
        raise AnswerParseError(str(exc), text) from None
