"""A kfp.local pipeline run as one terminal line per step; everything else goes to a log file.

kfp.local runs each step as a subprocess and prints its output, its own records ("Executing task", "finished
with status", "outputs:", "cache hit") and pip's chatter on this process's stdout/stderr. :func:`captured_fds`
points file descriptors 1 and 2 at the log file for the duration, so all of it (children included) lands there.
:class:`StepTracker` is a filter on the root logger (kfp.local swaps the root *handlers* around each task, a
logger filter stays): it sees kfp's records, and prints a line per finished step with its wall time and key
output (:mod:`lowres_ocr.pipeline.summaries`); for a failed step, the tail of what the step wrote to the log.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.markup import escape

from lowres_ocr.pipeline.summaries import Outputs, base_name, describe

T = TypeVar("T")
TAIL_LINES = 20
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXECUTING = re.compile(r"^Executing task '([^']+)'")
_FINISHED = re.compile(r"^Task '([^']+)' finished with status (\w+)")
_OUTPUTS = re.compile(r"^Task '([^']+)' (outputs:|has no outputs)")
_CACHE_HIT = re.compile(r"^Task (\S+) cache hit \(key=([0-9a-f]+)\)")
_SKIP_CONDITION = re.compile(r"^Skipping conditional task (\S+)")
_ARTIFACT = re.compile(r"^(\w+)\( name='(.*)',$")


@dataclass
class PipelineTasks:
    """The executor tasks of a compiled pipeline, and which of them each condition (dsl.If/Else) holds."""

    order: list[str] = field(default_factory=list)
    conditions: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # task → (display name, tasks)


def pipeline_tasks(pipeline: Any) -> PipelineTasks:
    """Walk ``pipeline.pipeline_spec`` (a kfp GraphComponent's PipelineSpec) down through its sub-DAGs."""
    spec = pipeline.pipeline_spec
    tasks = PipelineTasks()

    def walk(dag: Any) -> list[str]:
        found: list[str] = []
        for name, task in dag.tasks.items():
            comp = spec.components[task.component_ref.name]
            if comp.WhichOneof("implementation") == "dag":
                inner = walk(comp.dag)
                tasks.conditions[name] = (task.task_info.name or name, inner)
                found += inner
            else:
                tasks.order.append(name)
                found.append(name)
        return found

    walk(spec.root.dag)
    return tasks


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_outputs(message: str) -> Outputs:
    """The outputs block of kfp.local's "Task 'x' outputs:" record: parameters and artifacts (uri, metadata)."""
    outputs: Outputs = {}
    current: str | None = None
    for line in message.splitlines()[1:]:
        if line.startswith("    ") and not line.startswith("     "):
            key, _, value = line.strip().partition(": ")
            current = key
            outputs[key] = {"uri": "", "metadata": {}} if _ARTIFACT.match(value) else _literal(value)
            continue
        text = line.strip()
        if current is None or not isinstance(outputs.get(current), dict):
            continue
        if text.startswith("uri='"):
            outputs[current]["uri"] = text[len("uri='"):].rstrip(",").rstrip("'")
        elif text.startswith("metadata="):
            meta = _literal(text[len("metadata="):].removesuffix(")").strip())
            outputs[current]["metadata"] = meta if isinstance(meta, dict) else {}
    return outputs


def cached_outputs(cache_root: Path, key_prefix: str) -> Outputs:
    """Outputs of a cache hit, from the kfp.local cache entry (``<cache_root>/<key>.json``)."""
    for entry in sorted(cache_root.glob(f"{key_prefix}*.json")):
        try:
            data = json.loads(entry.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return {k: {"uri": v.get("uri", ""), "metadata": v.get("metadata") or {}}
                if isinstance(v, dict) and v.get("__kfp_artifact__") else v for k, v in data.items()}
    return {}


class StepTracker(logging.Filter):
    """Follows kfp.local's records on the root logger and prints one line per step to ``console``."""

    def __init__(self, console: Console, tasks: PipelineTasks, cache_root: Path, log_path: Path) -> None:
        super().__init__()
        self.console, self.tasks, self.cache_root, self.log_path = console, tasks, cache_root, log_path
        self.started: dict[str, tuple[float, int]] = {}  # task → (start time, log offset)
        self.pending: dict[str, float] = {}  # finished with SUCCESS, outputs record not seen yet: task → wall
        self.done: dict[str, str] = {}  # task → "ok" | "cached" | "failed" | "skipped"
        self.failed: list[str] = []
        self.context: dict[str, Any] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._handle(_ANSI.sub("", record.getMessage()), record.created)
        except Exception as err:  # a display problem must never stop the pipeline
            self.console.print(f"[dim](progress display: {escape(str(err))})[/dim]")
        return True

    def _handle(self, msg: str, now: float) -> None:
        if m := _EXECUTING.match(msg):
            self.started[m.group(1)] = (now, self._log_size())
        elif m := _FINISHED.match(msg):
            task, wall = m.group(1), now - self.started.get(m.group(1), (now, 0))[0]
            if m.group(2) == "SUCCESS":
                self.pending[task] = wall
            else:
                self._failed(task, wall)
        elif m := _OUTPUTS.match(msg):
            task = m.group(1)
            outputs = parse_outputs(msg) if m.group(2) == "outputs:" else {}
            self._line(task, "ok", self.pending.pop(task, 0.0), describe(task, outputs, self.context))
        elif m := _CACHE_HIT.match(msg):
            task = m.group(1)
            self._line(task, "cached", 0.0, describe(task, cached_outputs(self.cache_root, m.group(2)), self.context))
        elif m := _SKIP_CONDITION.match(msg):
            label, inner = self.tasks.conditions.get(m.group(1), (m.group(1), []))
            self.skip(inner, f"{label}: false")

    def skip(self, tasks: list[str], why: str, once_per_component: bool = True) -> None:
        """A 'skipped' line for each step not run; ``once_per_component``: none for a step whose twin in the other
        branch runs or ran (``build-triton-repo`` / ``build-triton-repo-2``)."""
        others = {base_name(t) for t in self.tasks.order if t not in tasks}
        for task in tasks:
            shown = {base_name(t) for t in self.done}
            if not once_per_component:
                self._line(task, "skipped", 0.0, why, base_name(task) if base_name(task) not in shown else task)
            elif base_name(task) not in shown and base_name(task) not in others:
                self._line(task, "skipped", 0.0, why, base_name(task))

    def finish(self) -> None:
        """Steps that never reported: their condition was false, or an earlier step failed."""
        left = [t for t in self.tasks.order if t not in self.done]
        if self.failed:
            self.skip(left, "not run (an earlier step failed)", once_per_component=False)
        else:
            self.skip(left, "not run")

    def _failed(self, task: str, wall: float) -> None:
        self.failed.append(task)
        self._line(task, "failed", wall, f"failed; last {TAIL_LINES} lines of its log:")
        for line in self._tail(self.started.get(task, (0.0, 0))[1]):
            self.console.print(f"    {escape(line)}", style="dim", highlight=False)

    def _line(self, task: str, state: str, wall: float, text: str, name: str = "") -> None:
        self.done[task] = state
        mark = {"ok": "[green]✓[/green]", "cached": "[green]✓[/green]", "failed": "[red]✗[/red]",
                "skipped": "[dim]–[/dim]"}[state]
        when = "cached" if state == "cached" else "" if state == "skipped" else f"{wall:.1f} s"
        name = name or task
        self.console.print(f"{mark} {name:<20} {when:>8}  {escape(text)}", highlight=False)

    def _log_size(self) -> int:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return self.log_path.stat().st_size if self.log_path.is_file() else 0

    def _tail(self, offset: int) -> list[str]:
        self._log_size()  # flushes
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            text = _ANSI.sub("", fh.read().decode("utf-8", "replace"))
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-TAIL_LINES:]


@contextlib.contextmanager
def captured_fds(log_path: Path) -> Iterator[TextIO]:
    """File descriptors 1 and 2 (what child processes inherit) and ``sys.stdout`` / ``sys.stderr`` append to
    ``log_path``; yields a stream on the original fd 1 (the terminal) for the lines meant for people."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    log = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # sys.stdout / sys.stderr too: they may not be fds 1/2 (e.g. under pytest's capture)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield terminal
    finally:
        log.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)
        log.close()
        terminal.close()


def run_with_progress(run: Callable[[], T], pipeline: Any, log_path: Path, cache_root: Path,
                      console: Console | None = None) -> tuple[T | None, StepTracker, BaseException | None]:
    """Call ``run`` (which runs ``pipeline`` with kfp.local) with its output in ``log_path`` and a line per step on
    the terminal (or ``console``); returns (result, tracker, the exception ``run`` raised or None)."""
    with captured_fds(log_path) as terminal:
        out = console or Console(file=terminal, soft_wrap=True, force_terminal=terminal.isatty(), highlight=False)
        tracker = StepTracker(out, pipeline_tasks(pipeline), cache_root, log_path)
        root = logging.getLogger()
        level = root.level
        root.addFilter(tracker)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        t0 = time.perf_counter()
        result: T | None = None
        error: BaseException | None = None
        try:
            result = run()
        except Exception as err:  # reported by the caller: the failed step's line and log tail are printed already
            error = err
            logging.getLogger(__name__).exception("pipeline run failed")
        finally:
            root.removeFilter(tracker)
            root.setLevel(level)
            tracker.finish()
            tracker.context["wall"] = time.perf_counter() - t0
    return result, tracker, error
