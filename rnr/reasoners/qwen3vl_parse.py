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

The search reads from every ``{`` of the answer, so it remembers what it read at each position (an
object or list read from one ``{`` is the same when an enclosing read reaches it), reads the last
``{`` first and refuses nesting deeper than :data:`MAX_NESTING`: the work stays linear in the
answer's length even for degenerate answers full of brackets (a random or looping model writes
``{{{`` or ``{"a": {"a": ...`` for a thousand tokens), which cost seconds to minutes when every
``{`` was read again to the end of the text.
"""

from __future__ import annotations

import re
from typing import Any

from ..diagnosis import DEGRADATIONS, Diagnosis, from_dict
from ..diagnosis.model import MAX_REASONING_CHARS
from ..errors import DiagnosisError, RnRError

RAW_SHOWN_CHARS = 1500
MAX_NESTING = 32
"""Objects and lists nested deeper than this are not read (a Diagnosis nests four levels)."""


class AnswerParseError(RnRError):
    """A model answer holds no readable Diagnosis; ``raw`` is the full answer text."""

    def __init__(self, reason: str, raw: str) -> None:
        self.reason = reason
        self.raw = raw
        shown = raw if len(raw) <= RAW_SHOWN_CHARS else raw[:RAW_SHOWN_CHARS] + f"... ({len(raw)} characters in all)"
        super().__init__(f"the reasoner's answer holds no valid Diagnosis: {reason}. Raw answer:\n{shown}")


class _SyntaxFault(Exception):
    pass


class _Failed(str):
    """A remembered syntax fault (its message)."""


class _TooDeep(_SyntaxFault):
    """Nesting beyond :data:`MAX_NESTING` where the read started. Remembered only as a least nesting
    (see :meth:`_Reader._nested`): the same text read from a later, shallower start may fit."""


_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_OPEN_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
_WORDS = {"true": True, "false": False, "null": None, "none": None, "yes": True, "no": False,
          "nan": None, "infinity": None, "undefined": None}
_FENCE_RE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_SPACE_RE = re.compile(r"\s+")
_STRING_STOP_RE = {closer: re.compile("[\\\\" + re.escape(closer) + "]") for closer in set(_OPEN_QUOTES.values())}
"""Per closing quote: the next backslash or closing quote (the string reader jumps between them)."""


class _Reader:
    """A lenient recursive-descent reader of JSON-like text starting at ``pos``.

    ``memo`` (shared by the readers of one text) remembers what was read at each position where an
    object or list starts (see :meth:`_nested`).
    """

    def __init__(self, text: str, pos: int, memo: dict | None = None) -> None:
        self.text = text
        self.pos = pos
        self.memo = {} if memo is None else memo
        self.depth = 0
        self.nesting = 0
        """How deep the value read last nests (0 for a scalar)."""

    # ---- characters --------------------------------------------------------------------------
    def _skip_space_and_comments(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos = _SPACE_RE.match(text, self.pos).end()  # type: ignore[union-attr]
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
            return self._nested(self.obj)
        if ch and ch in "[(":
            return self._nested(self.array)
        self.nesting = 0
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

    def _nested(self, read) -> Any:
        """``read()`` (the object or list at ``pos``), remembered by position, nesting bounded.

        The memo holds, per position: ``(value, end, nesting)`` after a successful read, a
        :class:`_Failed` message after a syntax fault, or an int, the least nesting of a read that
        went deeper than :data:`MAX_NESTING` (entered at depth d, it nests more than
        ``MAX_NESTING - d`` levels), so that it is read again only where it is entered less deep.
        """
        start = self.pos
        known = self.memo.get(start)
        if isinstance(known, _Failed):
            raise _SyntaxFault(str(known))
        if isinstance(known, tuple):
            value, end, nesting = known
            if self.depth + nesting > MAX_NESTING:
                raise _TooDeep(f"nested deeper than {MAX_NESTING} levels")
            self.pos, self.nesting = end, nesting
            return value
        if self.depth >= MAX_NESTING or (known is not None and self.depth + known > MAX_NESTING):
            raise _TooDeep(f"nested deeper than {MAX_NESTING} levels")
        entered = self.depth
        self.depth += 1
        try:
            value, nesting = read()
        except _TooDeep:
            self.memo[start] = MAX_NESTING - entered + 1
            raise
        except _SyntaxFault as exc:
            self.memo[start] = _Failed(str(exc))
            raise
        finally:
            self.depth -= 1
        self.memo[start] = (value, self.pos, nesting)
        self.nesting = nesting
        return value

    def obj(self) -> tuple[dict, int]:
        """The object at ``pos`` and how deep it nests."""
        self.pos += 1
        result: dict[str, Any] = {}
        nesting = 1
        while True:
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                continue
            if ch in ("}", ""):
                self.pos += 1
                return result, nesting
            if ch in "])":
                raise _SyntaxFault(f"{ch!r} closes an object")
            if ch in "{[(":
                # Whatever it holds, an object or list is no key: refuse before reading it.
                raise _SyntaxFault("an object key must be a name")
            key = self.value()
            if self.peek() not in (":", "="):
                raise _SyntaxFault(f"no ':' after the key {key!r}")
            self.pos += 1
            result[str(key) if key is not None else "null"] = self.value()
            nesting = max(nesting, 1 + self.nesting)

    def array(self) -> tuple[list, int]:
        """The list at ``pos`` and how deep it nests."""
        closer = "]" if self.text[self.pos] == "[" else ")"
        self.pos += 1
        items: list[Any] = []
        nesting = 1
        while True:
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                continue
            if ch in (closer, ""):
                self.pos += 1
                return items, nesting
            if ch in "]})":
                raise _SyntaxFault(f"{ch!r} closes a list")
            items.append(self.value())
            nesting = max(nesting, 1 + self.nesting)

    def string(self) -> str:
        closer = _OPEN_QUOTES[self.text[self.pos]]
        stop = _STRING_STOP_RE[closer]
        self.pos += 1
        out: list[str] = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            found = stop.search(text, self.pos)
            if found is None:
                out.append(text[self.pos:])
                self.pos = n
                break
            out.append(text[self.pos:found.start()])
            self.pos = found.start()
            if text[self.pos] == closer:
                self.pos += 1
                return "".join(out)
            if self.pos + 1 >= n:  # a backslash as the last character is kept as written
                out.append("\\")
                self.pos = n
                break
            nxt = text[self.pos + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[self.pos + 2:self.pos + 6]):
                out.append(chr(int(text[self.pos + 2:self.pos + 6], 16)))
                self.pos += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            self.pos += 2
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


def read_lenient(text: str, start: int = 0, memo: dict | None = None) -> tuple[Any, int]:
    """The JSON-like value at ``text[start:]`` and the index after it (raises ``ValueError``).

    Reads of one ``text`` from several starts may share a ``memo`` dict (what was read where).
    """
    reader = _Reader(text, start, memo)
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
        memo: dict = {}
        # Read from the last "{" back to the first: every read then finds what it encloses already
        # remembered, and the search below (first to last, as the rules above say) reads nothing twice.
        starts = [match.start() for match in re.finditer(r"\{", region[begin:])]
        for pos in reversed(starts):
            try:
                read_lenient(region, begin + pos, memo)
            except ValueError:
                pass
        pos = region.find("{", begin)
        while pos >= 0:
            try:
                value, after = read_lenient(region, pos, memo)
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
