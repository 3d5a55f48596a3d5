"""A progress bar with rate and ETA whose total can shrink as work turns out to be cached."""

from __future__ import annotations

from tqdm import tqdm


class Bar:
    """Context manager wrapping tqdm; ``update(done, total)`` sets absolute progress.

    The bar appears at the first update, so work that fails before it starts (preflight, bad
    settings) prints its error alone."""

    def __init__(self, desc: str, unit: str = "it") -> None:
        self.desc, self.unit = desc, unit
        self._bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, dynamic_ncols=True, smoothing=0.05)
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
