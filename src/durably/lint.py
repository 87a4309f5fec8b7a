"""The determinism lint (``durably lint PATH...``): a static check of workflow code for calls that
break replay.

A workflow is replayed from its journal after a crash, a lease loss or an eviction, so its code
must make the same durable calls in the same order each time it runs. Reading the clock, drawing
random numbers, doing I/O or starting threads in the workflow body gives a different answer on
replay; the lint finds such calls by reading the source (``ast``; it never imports the code) and
names what to use instead.

What counts as workflow code: the body of a function decorated with ``<name>.workflow`` or
``<name>.workflow(...)`` (``@app.workflow``, ``@billing.app.workflow(name=...)``; any name is
taken for an App), and the functions and lambdas defined inside that body, except those decorated
with ``<name>.step`` (steps run once and may do I/O). Functions the workflow calls that are
defined elsewhere are not followed. Imports are resolved through aliases (``import time as t``,
``from datetime import datetime``, ``import datetime as dt``), so ``durably.now()`` and
``from durably import random`` are never confused with the standard library.

A finding on a line that carries ``# durably: ignore[CODE]`` (several codes separated by commas)
or ``# durably: ignore`` (every code) is silenced. This module imports nothing of durably.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "RULES",
    "Finding",
    "LintError",
    "Rule",
    "add_arguments",
    "lint_paths",
    "lint_source",
    "run",
]


@dataclass(frozen=True)
class Rule:
    """One kind of call that breaks replay: its stable code, what is wrong, what to use."""

    code: str
    message: str
    suggestion: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("DUR101", "reads the clock: replay gets another time", "use durably.now()"),
        Rule("DUR102", "draws random values: replay gets others", "use durably.random()"),
        Rule("DUR103", "makes a random UUID: replay gets another", "use durably.uuid4()"),
        Rule(
            "DUR104",
            "reads OS randomness: replay gets other bytes",
            "use durably.random() or durably.uuid4()",
        ),
        Rule(
            "DUR105",
            "sleeps outside the journal: the wait is not durable",
            "use await durably.sleep() (async) or durably.sleep_sync() (sync)",
        ),
        Rule(
            "DUR106",
            "opens a file in workflow code: replay reads it again",
            "move it into a step",
        ),
        Rule(
            "DUR107",
            "does network I/O in workflow code: replay repeats it",
            "move it into a step",
        ),
        Rule(
            "DUR108",
            "runs a subprocess in workflow code: replay repeats it",
            "move it into a step",
        ),
        Rule(
            "DUR109",
            "starts a thread or an executor in workflow code: its timing differs on replay",
            "use steps (durably.submit() runs them concurrently)",
        ),
        Rule(
            "DUR110",
            "iterates over a set: its order can differ between processes (string hashing)",
            "iterate over sorted(...) or a list",
        ),
    )
}

# qualified name called -> code; a name ending in "." matches every name below that module
_CALLS: dict[str, str] = {
    **dict.fromkeys(
        [
            f"time.{name}{suffix}"
            for name in ("time", "monotonic", "perf_counter")
            for suffix in ("", "_ns")
        ]
        + [
            "datetime.datetime.now",
            "datetime.datetime.utcnow",
            "datetime.datetime.today",
            "datetime.date.today",
        ],
        "DUR101",
    ),
    "random.": "DUR102",
    "secrets.": "DUR102",
    "uuid.uuid1": "DUR103",
    "uuid.uuid4": "DUR103",
    "os.urandom": "DUR104",
    "os.getrandom": "DUR104",
    "time.sleep": "DUR105",
    "asyncio.sleep": "DUR105",
    "open": "DUR106",
    "io.open": "DUR106",
    "requests.": "DUR107",
    "httpx.": "DUR107",
    "urllib.request.": "DUR107",
    "socket.": "DUR107",
    "subprocess.": "DUR108",
    "os.system": "DUR108",
    "os.popen": "DUR108",
    "threading.Thread": "DUR109",
    "threading.Timer": "DUR109",
    "concurrent.futures.ThreadPoolExecutor": "DUR109",
    "concurrent.futures.ProcessPoolExecutor": "DUR109",
    "asyncio.to_thread": "DUR109",
}
_BUILTINS = frozenset({"open", "set", "frozenset"})
_SET_METHODS = frozenset({"union", "intersection", "difference", "symmetric_difference", "copy"})
_SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
_SET_TYPES = frozenset({"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "MutableSet"})
_IGNORE = re.compile(r"#\s*durably:\s*ignore(?:\[([A-Za-z0-9_,\s]*)\])?")
_SKIPPED_DIRS = frozenset({".venv", "__pycache__"})

_Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class Finding:
    """A call that breaks replay: where it is (line and column from 1), its rule, what to do."""

    path: str
    line: int
    col: int
    code: str
    message: str
    suggestion: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message} ({self.suggestion})"


class LintError(Exception):
    """A path the lint cannot check: missing, unreadable, or not valid Python (the message names
    the file, and the line of a syntax error)."""


def _decorated(fn: _Function, attr: str) -> bool:
    """Whether ``fn`` carries ``@<name>.<attr>`` or ``@<name>.<attr>(...)``."""
    if isinstance(fn, ast.Lambda):
        return False
    for decorator in fn.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == attr:
            return True
    return False


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


class _Module:
    """What a module's imports bind (local name -> qualified name), and which names it binds
    otherwise (so a local ``open`` or ``set`` is not taken for the builtin)."""

    def __init__(self, tree: ast.Module) -> None:
        # ast.walk goes breadth first: a module-level import wins over one in a function
        self.imports: dict[str, str] = {}
        self.bound: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports.setdefault(alias.asname, alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        self.imports.setdefault(top, top)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    qualified = f"{node.module}.{alias.name}"
                    self.imports.setdefault(alias.asname or alias.name, qualified)
            elif isinstance(node, _Definition):
                self.bound.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.bound.add(node.id)
            elif isinstance(node, ast.arg):
                self.bound.add(node.arg)

    def qualified(self, node: ast.expr) -> str | None:
        """The qualified name ``node`` refers to (``t.time`` -> ``time.time`` after ``import time
        as t``), ``open``/``set``/``frozenset`` for the builtins, None when unknown."""
        parts = _dotted(node)
        if parts is None:
            return None
        head = parts[0]
        if head in self.imports:
            return ".".join([self.imports[head], *parts[1:]])
        if len(parts) == 1 and head in _BUILTINS and head not in self.bound:
            return head
        return None


def _code_of(qualified: str, call: ast.Call) -> str | None:
    if qualified in _CALLS:
        return _CALLS[qualified]
    if qualified == "random.Random" and (call.args or call.keywords):
        return None  # a generator with an explicit seed replays the same values
    for prefix, code in _CALLS.items():
        if prefix.endswith(".") and qualified.startswith(prefix):
            return code
    return None


def _own_nodes(fn: _Function) -> Iterator[ast.AST]:
    """The nodes of ``fn``'s body, without those of functions, lambdas and classes in it."""
    stack: list[ast.AST] = list(fn.body) if not isinstance(fn, ast.Lambda) else [fn.body]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _Definition | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _is_set_annotation(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Subscript):
        node = node.value
    parts = _dotted(node) if node is not None else None
    return parts is not None and parts[-1] in _SET_TYPES


class _Checker:
    """Walks one workflow function (and the code nested in it) and collects findings."""

    def __init__(self, module: _Module, report: list[tuple[ast.AST, str]]) -> None:
        self.module = module
        self.report = report
        # per enclosing function, innermost last: (names always holding a set, names bound)
        self.scopes: list[tuple[set[str], set[str]]] = []

    def check(self, fn: _Function) -> None:
        self.scopes.append(self._set_names(fn))
        for node in _own_nodes(fn):
            if isinstance(node, _Function):
                if not _decorated(node, "step"):
                    self.check(node)
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.For | ast.AsyncFor):
                self._iteration(node.iter)
            elif isinstance(node, ast.ListComp | ast.GeneratorExp | ast.DictComp):
                for generator in node.generators:
                    self._iteration(generator.iter)
        self.scopes.pop()

    def _call(self, call: ast.Call) -> None:
        qualified = self.module.qualified(call.func)
        code = _code_of(qualified, call) if qualified else None
        if code:
            self.report.append((call, code))

    def _iteration(self, iterable: ast.expr) -> None:
        if self._is_set(iterable):
            self.report.append((iterable, "DUR110"))

    def _is_set(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Set | ast.SetComp):
            return True
        if isinstance(node, ast.Name):
            for sets, bound in reversed(self.scopes):
                if node.id in bound:
                    return node.id in sets
            return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, _SET_OPERATORS):
            return self._is_set(node.left)
        if isinstance(node, ast.Call):
            if self.module.qualified(node.func) in ("set", "frozenset"):
                return True
            func = node.func
            return (
                isinstance(func, ast.Attribute)
                and func.attr in _SET_METHODS
                and self._is_set(func.value)
            )
        return False

    def _set_names(self, fn: _Function) -> tuple[set[str], set[str]]:
        """The names ``fn`` binds (not counting functions nested in it), and those of them every
        binding of which is a set."""
        arguments = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        sets = {arg.arg for arg in arguments if _is_set_annotation(arg.annotation)}
        bound = {arg.arg for arg in arguments}
        bound.update(extra.arg for extra in (fn.args.vararg, fn.args.kwarg) if extra is not None)
        others = bound - sets
        set_targets: set[int] = set()  # ids of the Name nodes a set is bound to
        stores: list[ast.Name] = []
        for node in _own_nodes(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                stores.append(node)
            elif isinstance(node, ast.Assign) and self._is_set(node.value):
                set_targets.update(id(target) for target in node.targets)
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr | ast.AugAssign):
                if self._binds_a_set(node):
                    set_targets.add(id(node.target))
            elif isinstance(node, _Definition | ast.ExceptHandler) and node.name:
                others.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                others.update((a.asname or a.name).split(".")[0] for a in node.names)
        for name in stores:
            (sets if id(name) in set_targets else others).add(name.id)
        return sets - others, sets | others

    def _binds_a_set(self, node: ast.AnnAssign | ast.NamedExpr | ast.AugAssign) -> bool:
        if isinstance(node, ast.AugAssign):
            return isinstance(node.op, _SET_OPERATORS)  # s |= other keeps a set a set
        if isinstance(node, ast.AnnAssign) and _is_set_annotation(node.annotation):
            return True
        return node.value is not None and self._is_set(node.value)


def _ignored(source: str) -> dict[int, set[str] | None]:
    """Line -> the codes its ``# durably: ignore[...]`` comment silences (None: every code)."""
    comments: list[tuple[int, str]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments.append((token.start[0], token.string))
    except (tokenize.TokenError, SyntaxError):
        comments = [(number, line) for number, line in enumerate(source.splitlines(), 1)]
    ignored: dict[int, set[str] | None] = {}
    for line, text in comments:
        match = _IGNORE.search(text)
        if match:
            codes = match.group(1)
            ignored[line] = None if codes is None else {c.strip().upper() for c in codes.split(",")}
    return ignored


def lint_source(source: str, path: str = "<string>") -> list[Finding]:
    """The findings in one module's source, in source order. Raises :class:`LintError` on a
    syntax error (naming ``path`` and the line)."""
    try:
        tree = ast.parse(source, filename=path)
    except ValueError as exc:  # a null byte in the source
        raise LintError(f"{path}: cannot parse it: {exc}") from None
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}:{exc.offset or 1}" if exc.lineno else path
        raise LintError(f"{where}: syntax error: {exc.msg}") from None
    module = _Module(tree)
    report: list[tuple[ast.AST, str]] = []
    checker = _Checker(module, report)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _decorated(
            node, "workflow"
        ):
            checker.check(node)
    ignored = _ignored(source)
    lines = source.splitlines()
    findings: dict[tuple[int, int, str], Finding] = {}
    for node, code in report:
        line, offset = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        silenced = ignored.get(line, set())
        if silenced is None or code in silenced:
            continue
        text = lines[line - 1] if line <= len(lines) else ""
        col = len(text.encode()[:offset].decode(errors="ignore")) + 1
        rule = RULES[code]
        findings[(line, col, code)] = Finding(path, line, col, code, rule.message, rule.suggestion)
    return [findings[key] for key in sorted(findings)]


def _python_files(root: Path, seen: set[Path]) -> Iterator[Path]:
    if root.resolve() in seen:  # a symbolic link back up the tree
        return
    seen.add(root.resolve())
    try:
        children = sorted(root.iterdir())
    except OSError as exc:
        raise LintError(f"{root}: cannot list it: {exc}") from None
    for child in children:
        if child.is_dir():
            if child.name not in _SKIPPED_DIRS and not child.name.startswith("."):
                yield from _python_files(child, seen)
        elif child.suffix == ".py":
            yield child


def _files(paths: Iterable[str]) -> Iterator[Path]:
    """Each file to check once, in the order given (a directory's files sorted by name)."""
    seen_dirs: set[Path] = set()
    seen_files: set[Path] = set()
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise LintError(f"{name}: no such file or directory")
        for file in _python_files(path, seen_dirs) if path.is_dir() else [path]:
            if file.resolve() not in seen_files:
                seen_files.add(file.resolve())
                yield file


def lint_paths(paths: Iterable[str]) -> tuple[list[Finding], int]:
    """The findings in the given files and directories (``*.py`` below a directory, skipping
    ``.venv``, ``__pycache__`` and hidden directories) and the number of files checked. Raises
    :class:`LintError` for the first path that is missing, unreadable or not valid Python."""
    findings: list[Finding] = []
    count = 0
    for path in _files(paths):
        try:
            with tokenize.open(path) as file:  # honours a coding declaration
                source = file.read()
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            raise LintError(f"{path}: cannot read it: {exc}") from None
        findings.extend(lint_source(source, str(path)))
        count += 1
    return findings, count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``durably lint``."""
    parser.epilog = "exit codes: 0 no findings, 1 findings, 2 a path it cannot check"
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Python files or directories")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the findings as a JSON list (path, line, col, code, message, suggestion)",
    )


def run(args: argparse.Namespace) -> int:
    """``durably lint``: print the findings; 0 none, 1 some, 2 a path it cannot check."""
    try:
        findings, count = lint_paths(args.paths)
    except LintError as exc:
        print(f"durably: error: {exc} (fix it, then run the lint again)", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(finding) for finding in findings], indent=2))
    else:
        for finding in findings:
            print(finding)
        files = len({finding.path for finding in findings})
        checked = f"{count} file{'s' * (count != 1)} checked"
        if findings:
            print(f"{len(findings)} finding(s) in {files} file(s), {checked}")
        else:
            print(f"no findings, {checked}")
    return 1 if findings else 0
