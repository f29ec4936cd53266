"""A fixture that turns a hang into a test failure: SIGALRM after 10 s raises :class:`Hung`.

``Hung`` is a BaseException, so no ``except OSError`` (TimeoutError is one) or
``except Exception`` in the code under test can swallow it.
"""

from __future__ import annotations

import signal
from typing import Iterator

import pytest


class Hung(BaseException):
    """The code under test blocked for the whole deadline."""


@pytest.fixture()
def deadline() -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise Hung("blocked for 10 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
