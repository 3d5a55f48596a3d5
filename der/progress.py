"""A progress bar with rate and ETA whose total can shrink as work turns out to be cached."""

from __future__ import annotations

from tqdm import tqdm


class Bar:
    """Context manager wrapping tqdm; ``update(done, total)`` sets absolute progress."""

    def __init__(self, desc: str, unit: str = "it") -> None:
        self._bar = tqdm(total=0, desc=desc, unit=unit, dynamic_ncols=True, smoothing=0.05)

    def update(self, done: int, total: int) -> None:
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
