"""Progress and cancellation of long work, as parameters rather than copies.

Every long-running function of latentlab (projection, pivotal tuning, a folder run, a drag, a
direction fit) takes ``progress`` and, where it can stop early, ``cancel``:

* ``progress``: ``None``/``False`` (silent), ``True`` (:func:`reporter`: a live bar on a terminal,
  one line per stage and per 10 % in a log), or a callable receiving :class:`Progress` events;
* ``cancel``: ``None``, a :class:`threading.Event`, or a callable returning True to stop. A stopped
  optimisation keeps its best result so far and says so (``interrupted``).

A :class:`Progress` event says which stage runs, how far it is (``step`` of ``total``), its latest
figures (``values``: loss, LPIPS ...) and, for optimisations, the image it just rendered
(``image``: [N, 3, h, w] in [-1, 1], for previews and progress videos; read it, do not keep it).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO, Union

#: What ``progress=`` accepts.
ProgressArg = Union[None, bool, Callable[["Progress"], None]]
#: What ``cancel=`` accepts.
CancelArg = Union[None, threading.Event, Callable[[], bool]]


@dataclass
class Progress:
    """One progress event. ``step``: units done in this stage (0 at its start); ``total``: units in
    the stage (0 when unknown); ``values``: the stage's latest figures; ``image``: the latest render
    [N, 3, h, w] in [-1, 1] or None; ``state``: extra objects for callers that need them (the latent
    being optimised, the generator being tuned), never shown."""

    stage: str
    step: int = 0
    total: int = 0
    message: str = ""
    values: dict[str, float] = field(default_factory=dict)
    image: Any = None
    state: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def fraction(self) -> float:
        """Share of the stage done, 0..1 (0 when the total is unknown)."""
        return min(1.0, self.step / self.total) if self.total > 0 else 0.0


def cancelled(cancel: CancelArg) -> bool:
    """Whether ``cancel`` asks to stop now."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _format_values(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, (int, float)))


class _Reporter:
    """A live tqdm bar per stage on a terminal; in a log, one line when a stage starts, at every
    ``every`` (fraction) of it and when it ends."""

    def __init__(self, stream: TextIO, every: float, prefix: str) -> None:
        self.stream, self.every, self.prefix = stream, every, prefix
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.stage: str | None = None
        self.bar: Any = None
        self.next_mark = 0.0
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()

    def _line(self, text: str) -> None:
        print(f"{self.prefix}{text}", file=self.stream, flush=True)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, p: Progress) -> None:
        with self.lock:
            if p.stage != self.stage:
                self._close_bar()
                self.stage, self.next_mark, self.t0 = p.stage, self.every, time.perf_counter()
                if self.tty and p.total > 1:
                    from tqdm.auto import tqdm

                    self.bar = tqdm(total=p.total, desc=p.stage, unit="step", leave=False, file=self.stream,
                                    dynamic_ncols=True)
                elif not self.tty:
                    self._line(f"{p.stage}: {p.message or 'started'}" + (f" ({p.total} steps)" if p.total > 1 else ""))
            if self.bar is not None:
                self.bar.n = min(p.step, p.total)
                if p.values:
                    self.bar.set_postfix_str(_format_values(p.values), refresh=False)
                self.bar.refresh()
                if p.total and p.step >= p.total:
                    self._close_bar()
                return
            if self.tty:
                if p.message and p.total <= 1:
                    self._line(f"{p.stage}: {p.message}")
                return
            if p.total and p.step >= p.total:
                self._line(f"{p.stage}: done, {p.step}/{p.total} in {time.perf_counter() - self.t0:.1f} s"
                           + (f"; {_format_values(p.values)}" if p.values else ""))
                self.next_mark = 2.0
            elif p.total and p.fraction >= self.next_mark:
                self._line(f"{p.stage}: {p.step}/{p.total} ({p.fraction:.0%})"
                           + (f"; {_format_values(p.values)}" if p.values else ""))
                while self.next_mark <= p.fraction:
                    self.next_mark += self.every


def reporter(stream: TextIO | None = None, *, every: float = 0.1, prefix: str = "latentlab: ") -> Callable[[Progress], None]:
    """A progress callback that fits where its output goes: on a terminal a live bar per stage; in a
    log or CI output one line per stage start and end and per ``every`` (fraction) of a stage."""
    return _Reporter(stream if stream is not None else sys.stderr, every, prefix)


class Counter:
    """A count towards a total (bytes of a download, steps of a conversion) shown as
    :func:`reporter` shows progress: a live tqdm bar on a terminal; in a log one line at the start,
    one per ``every`` (fraction) and one at the end. ``enabled=False`` shows nothing."""

    def __init__(self, total: int | None, desc: str, *, unit: str = "B", enabled: bool = True,
                 stream: TextIO | None = None, every: float = 0.1, initial: int = 0) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n = int(initial)
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Any = None
        self.enabled = enabled
        self.next_mark = every
        if not enabled:
            return
        if bool(getattr(self.stream, "isatty", lambda: False)()):
            from tqdm.auto import tqdm

            scale = unit == "B"
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=scale,
                            unit_divisor=1024 if scale else 1000, leave=False, file=self.stream)
        else:
            size = f" ({_amount(total, unit)})" if total else ""
            print(f"{desc}: started{size}", file=self.stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.total:
            frac = self.n / self.total
            if frac >= self.next_mark and frac < 1.0:
                print(f"{self.desc}: {frac:.0%}", file=self.stream, flush=True)
                while self.next_mark <= frac:
                    self.next_mark += self.every

    def set_postfix_str(self, text: str) -> None:
        """A note beside the bar (terminal only)."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled:
            self.enabled = False
            print(f"{self.desc}: done ({_amount(self.n, self.unit)})", file=self.stream, flush=True)

    def __enter__(self) -> "Counter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _amount(n: int | None, unit: str) -> str:
    if n is None:
        return "?"
    if unit == "B":
        for u in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or u == "GiB":
                return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
            n /= 1024
    return f"{n} {unit}"


def as_callback(progress: ProgressArg) -> Callable[[Progress], None] | None:
    """``progress=`` as a callable (``True``: :func:`reporter`) or None (silent)."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return reporter()
    if not callable(progress):
        from .errors import LatentlabError

        raise LatentlabError(f"progress must be True, False, None or a callable, got {type(progress).__name__}")
    return progress


__all__ = ["CancelArg", "Counter", "Progress", "ProgressArg", "as_callback", "cancelled", "reporter"]
