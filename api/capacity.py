"""Bounded capacity for the heavy routes: at most ``slots`` at once, a bounded wait for a slot, then 503.

Two uses: ``await capacity.run(fn, ...)`` (tiles, /health) runs ``fn`` in the capacity's own threads;
``Depends(render_slot)`` holds a slot of the renders' capacity (map pages and images, file downloads) for a
request, the handler running as it would anyway, so that few of these CPU-bound requests compete at once
for the process (and its GIL) with everything else.

The work runs in a thread pool of the capacity's own, not in the event loop and not in Starlette's shared
pool: a flood of tile requests neither blocks the loop nor takes the threads other routes (and /health)
need. A request that waits longer than ``max_wait_s`` for a slot gets ``ServiceBusy`` (503, Retry-After).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request

from gis.platform.errors import ServiceBusy

P = ParamSpec("P")
T = TypeVar("T")


class Capacity:
    """``await capacity.run(fn, *args)``: ``fn(*args)`` in a thread once a slot is free."""

    def __init__(self, name: str, slots: int, max_wait_s: float) -> None:
        self.name = name
        self.max_wait_s = max_wait_s
        # anyio's limiters bind to the running event loop lazily, so one object serves every loop
        # (tests run several); the second one sizes the thread pool, whose tokens are always free.
        self._slots = anyio.CapacityLimiter(slots)
        self._threads = anyio.CapacityLimiter(slots)

    @property
    def in_use(self) -> int:
        return self._slots.borrowed_tokens

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; ServiceBusy when none comes free within ``max_wait_s``."""
        borrower = object()  # not the task: a dependency's exit may run in another task than its entry
        try:
            with anyio.fail_after(self.max_wait_s):
                await self._slots.acquire_on_behalf_of(borrower)
        except TimeoutError:
            raise ServiceBusy(f"the server is busy ({self.name}): no slot came free within {self.max_wait_s:g} s;"
                              " try again shortly") from None
        try:
            yield
        finally:
            self._slots.release_on_behalf_of(borrower)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in this capacity's threads once a slot is free (``slot``)."""
        async with self.slot():
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._threads)


async def render_slot(request: Request) -> AsyncIterator[None]:
    """A dependency: one of the renders' slots (``app.state.render_capacity``) for the whole request, a
    streamed body included; 503 with Retry-After when none comes free in time."""
    async with request.app.state.render_capacity.slot():
        yield
