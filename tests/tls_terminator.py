"""TLS in front of a plain Redis, as stunnel, Envoy or a cloud load balancer puts it: for the
rediss:// tests on machines whose Redis was built without TLS (the wheels' are). Every client of
ours still speaks real TLS and verifies the server's certificate; only the hop from the terminator
to Redis, on loopback inside the test, is plain."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path


class TlsTerminator:
    def __init__(self, backend_port: int, cert: Path, key: Path, bind: str = "127.0.0.1") -> None:
        self.backend_port, self.bind = backend_port, bind
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(cert), str(key))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> TlsTerminator:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = future.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, self.bind, 0, ssl=self._context)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            backend_in, backend_out = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(_pump(client_in, backend_out), _pump(backend_in, client_out))

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                # a client still connected would hold wait_closed(); its tasks end with the loop

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> TlsTerminator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, RuntimeError):
        sink.close()
