"""The app's ``receive``, and one listener for the client's ``http.disconnect``.

ASGI HTTP spec, "Disconnect - receive event": after the request body, ``receive`` waits
until the client goes away. A middleware that ends a response itself (a ``416``, the ranges
of a file) must say so to the app, and must hear a client that goes away while it sends a
body the app no longer sends. ``DisconnectWatcher`` does both with one task at most:

- ``receive()`` is the app's: it passes the request body through while the app reads it,
  and answers ``http.disconnect`` once ``finish()`` was called (the response is over);
- ``watch()`` starts the listener (``watch_while_sending`` once the request is read), a
  task that reads the server's ``receive``: request messages it takes are kept for the app
  (``receive()`` hands them out in order), an ``http.disconnect`` (or a ``receive`` that
  fails) calls ``on_disconnect``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["DisconnectWatcher"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

_DISCONNECT: Message = {"type": "http.disconnect"}


class DisconnectWatcher:
    """The app's ``receive`` over the server's, and the listener for the disconnect."""

    # What most exchanges never change starts as a class attribute: making one watcher per
    # request then costs only what each request sets.
    over = False  # the response is over: receive says http.disconnect
    body_read = False  # the server gave the last request body message
    receiving = False  # the app waits in the server's receive
    _received: asyncio.Future[None] | None = None  # done when that receive returns
    _stash: list[Message] | None = None  # request messages the listener took for the app
    _task: asyncio.Task[None] | None = None
    _event: asyncio.Event | None = None  # set when over, or when a message is kept

    def __init__(self, receive: Receive, on_disconnect: Callable[[], None]) -> None:
        self._receive = receive
        self._on_disconnect = on_disconnect

    def finish(self) -> None:
        """The response is over: the app's receive says ``http.disconnect`` from now on."""
        self.over = True
        if self._event is not None:
            self._event.set()

    async def receive(self) -> Message:
        """The app's receive: the request, then ``http.disconnect`` once the response is
        over."""
        while True:
            if self._stash:
                return self._stash.pop(0)
            if self.over:
                return dict(_DISCONNECT)
            if self._task is None and not self.body_read:
                return await self._pass_through()
            self.watch()
            event = self._event
            assert event is not None
            await event.wait()

    async def _pass_through(self) -> Message:
        """The server's receive, for the app, while nobody else listens."""
        self.receiving = True
        try:
            message = await self._receive()
        finally:
            self.receiving = False
            if self._received is not None and not self._received.done():
                self._received.set_result(None)
        self._note(message)
        return message

    def _note(self, message: Message) -> bool:
        """Record what a server message tells; False when it is the disconnect."""
        if message.get("type") == "http.disconnect":
            self._on_disconnect()
            self.finish()
            return False
        if not message.get("more_body", False):
            self.body_read = True
        return True

    @property
    def watching(self) -> bool:
        """The listener runs (it hears a disconnect before anyone else calls receive)."""
        return self._task is not None

    def watch(self) -> None:
        """Listen for the client's disconnect in a task of our own (``close`` cancels it)."""
        if self._event is None:
            self._event = asyncio.Event()
        if self._task is None:
            self._task = asyncio.ensure_future(self._listen())

    def watch_while_sending(self, bodiless: bool) -> None:
        """``watch`` while the middleware sends a body, once the request is read (or has no
        body): never while the app itself waits in the server's receive."""
        if not self.receiving and (self.body_read or bodiless):
            self.watch()

    async def _listen(self) -> None:
        while not self.over:
            try:
                message = await self._receive()
            except Exception:  # a server whose receive fails has lost its client
                message = dict(_DISCONNECT)
            had_body = self.body_read
            if self._note(message) and not had_body:
                # the request itself, for the app to read
                self._stash = [*(self._stash or ()), message]
                assert self._event is not None
                self._event.set()
                self._event = asyncio.Event()

    async def receive_returned(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the app's receive that is in the server's
        returns."""
        if not self.receiving or timeout <= 0:
            return
        if self._received is None or self._received.done():
            self._received = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._received], timeout=timeout)

    def close(self) -> None:
        """Stop the listener."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
