"""Error types shared by the whole library.

Every error a user can cause is an :class:`RnRError` whose message says what was wrong, the value that
was seen and what to do next. Nodes turn these into readable messages in the ComfyUI UI.
"""

from __future__ import annotations


class RnRError(ValueError):
    """Base class for user-facing errors of ComfyUI-RnR."""


class DiagnosisError(RnRError):
    """A Diagnosis (or its JSON) is invalid.

    ``path`` is the JSON path of the offending field (``"haze.severity"``, ``"order[2]"``),
    ``expected`` what was expected there and ``got`` the value seen.
    """

    def __init__(self, path: str, expected: str, got: object = None, hint: str = "") -> None:
        self.path = path
        self.expected = expected
        self.got = got
        shown = repr(got)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        message = f"diagnosis field '{path}': expected {expected}, got {shown}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class ImageError(RnRError):
    """An input image cannot be used (wrong shape, dtype, NaNs, unreadable file, too large)."""


class ModelNotFoundError(RnRError):
    """A model folder or file is missing or incomplete."""


class BackendError(RnRError):
    """An unknown backend name or a backend that cannot run in this environment."""


class Interrupted(RuntimeError):
    """The user asked to stop; raised between steps of a long loop."""


class OptionError(BackendError):
    """A backend option that the backend does not take, or a value of the wrong type."""
