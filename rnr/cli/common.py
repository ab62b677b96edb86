"""What the subcommands share: model options, input expansion, output paths, JSON and progress."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from .. import api, registry
from ..errors import Interrupted, RnRError
from ..images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, list_image_files

T = TypeVar("T")


def add_model_args(parser: argparse.ArgumentParser, *kinds: str) -> None:
    """``--reasoner NAME --reasoner-path P --reasoner-option K=V`` (and the same for restorers),
    ``--device`` and ``--dtype``. Backend names come from the registry, so new backends need no CLI change."""
    for kind in kinds:
        names = ", ".join(["auto", *registry.available(kind)])
        parser.add_argument(f"--{kind}", default="auto", metavar="NAME",
                            help=f"{kind} backend: {names} (default auto: lite when its weights are installed, "
                                 "else classic)")
        parser.add_argument(f"--{kind}-path", default="", metavar="PATH",
                            help=f"model file or folder for the {kind} (backends with built-in weights need none)")
        parser.add_argument(f"--{kind}-option", action="append", default=[], metavar="KEY=VALUE",
                            help=f"backend-specific {kind} option (repeatable), converted to the option's type; "
                                 "see docs/backend_options.md")
    add_device_args(parser)


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU if there is one), cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto, fp32, fp16 or bf16")


def add_max_pixels_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                        help=f"refuse images larger than this (default {DEFAULT_MAX_PIXELS / 1e6:.0f} MP)")


def max_pixels(args: argparse.Namespace) -> int:
    return int(args.max_megapixels * 1e6)


def parse_options(items: Iterable[str]) -> dict[str, Any]:
    """``["tile=512", "reask=false"]`` -> ``{"tile": "512", "reask": "false"}``.

    Values stay text: :class:`~rnr.registry.ModelSpec` converts each to its option's declared type
    (``"512"`` -> 512, ``"False"`` -> False, JSON text for JSON options). A value in JSON double quotes
    is unquoted (``x="a b"`` -> ``a b``)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise RnRError(f"backend option {item!r} is not KEY=VALUE; e.g. --restorer-option tile=512")
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                unquoted = json.loads(text)
            except json.JSONDecodeError:
                unquoted = None
            if isinstance(unquoted, str):
                text = unquoted
        options[key.strip()] = text
    return options


def load_model(args: argparse.Namespace, kind: str, name: str | None = None) -> Any:
    """The model named on the command line (or ``name``), loaded once through the cache."""
    loader = api.load_reasoner if kind == "reasoner" else api.load_restorer
    return loader(name or getattr(args, kind), getattr(args, f"{kind}_path", ""), args.device, args.dtype,
                  **parse_options(getattr(args, f"{kind}_option", [])))


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files as given (missing ones too, so that each is reported by name) and the images inside folders."""
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = list_image_files(item)
            if not found:
                raise RnRError(f"{item}: the folder has no image files ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        else:
            paths.append(item)
    if not paths:
        raise RnRError("no input images given")
    return paths


def output_paths(inputs: list[str], output: str | None, single_file: bool, suffix: str,
                 extension: str | None = None) -> list[str]:
    """Where each input's result goes.

    ``output`` with an image suffix and one input file: that file. Any other ``output``: a folder that
    receives each result under its input's file name. No ``output``: next to the input, named
    ``<stem><suffix><ext>``. Collisions and overwriting an input raise before any work is done.
    """
    def ext_of(path: str) -> str:
        return extension if extension else Path(path).suffix.lower() or ".png"

    if output and Path(output).suffix.lower() in IMAGE_SUFFIXES and not os.path.isdir(output):
        if not single_file:
            raise RnRError(f"-o {output} names one file, but there are {len(inputs)} inputs (or a folder); "
                           "give a folder for -o instead")
        results = [output]
    elif output:
        results = [str(Path(output) / (Path(p).stem + ext_of(p))) for p in inputs]
    else:
        results = [str(Path(p).with_name(Path(p).stem + suffix + ext_of(p))) for p in inputs]
    seen: dict[str, str] = {}
    for source, target in zip(inputs, results):
        key = os.path.abspath(target)
        if key in seen:
            raise RnRError(f"{seen[key]} and {source} would both be written to {target}; rename one or give "
                           "them separate runs")
        if os.path.abspath(source) == key:
            raise RnRError(f"{target} would overwrite its input; choose another output folder with -o")
        seen[key] = source
    return results


def progress_bar(items: list, description: str, quiet: bool):
    """A tqdm bar on stderr over ``items`` (off with --quiet or for a single item)."""
    return tqdm(items, desc=description, unit="img", disable=quiet or len(items) < 2, file=sys.stderr,
                dynamic_ncols=True)


SHOW_TRACEBACKS = False
"""Set by ``rnr --traceback``: print the traceback of unexpected (non-RnRError) failures."""


def report_failure(path: str, exc: BaseException) -> None:
    """One line on stderr naming the file and what went wrong (a traceback only with --traceback)."""
    if SHOW_TRACEBACKS and not isinstance(exc, RnRError):
        tqdm.write("".join(traceback.format_exception(exc)), file=sys.stderr)
    message = str(exc)
    if not isinstance(exc, RnRError):
        message = f"{type(exc).__name__}: {message}"
    if not message.startswith(path):
        message = f"{path}: {message}"
    tqdm.write(f"rnr: error: {message}", file=sys.stderr)


def for_each_image(paths: list[str], description: str, quiet: bool,
                   work: Callable[[int, str], T]) -> tuple[list[T], list[str]]:
    """``work(index, path)`` for each input under a progress bar. A file that fails is reported by name
    and the others go on; returns the results of those that worked and the paths that failed."""
    results: list[T] = []
    failed: list[str] = []
    for index in progress_bar(list(range(len(paths))), description, quiet):
        path = paths[index]
        try:
            results.append(work(index, path))
        except Interrupted:
            raise
        except Exception as exc:  # one bad file must not stop the others
            report_failure(path, exc)
            failed.append(path)
    return results, failed


def exit_code(failed: list[str], total: int) -> int:
    """0 when no input failed, else 1 after naming the failed ones on stderr."""
    if failed:
        print(f"rnr: {len(failed)} of {total} images failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def write_text(path: str, text: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RnRError(f"{path}: cannot write the file ({exc.strerror or exc})") from None


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RnRError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


_NUMBER_LIST = re.compile(r"\[\s*([^\[\]{}\"]*?)\s*\]")


def dumps(value: Any) -> str:
    """Indented JSON with lists of numbers kept on one line (transmission maps stay readable)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s*,\s*", ", ", m.group(1).strip()) + "]", text)
