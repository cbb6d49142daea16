"""The raw floor: a bare `websockets` server that broadcasts each frame to every socket of its room.

No framework, no channel layer, no JSON: the least a Python server can do to fan a frame out,
so the messenger's figures can say how far they stand from it.

    python -m bench.raw_floor --port 8765       # ws://host:port/ws/chat/<room>/
"""

import argparse
import asyncio
import contextlib
import resource
import signal
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

rooms: dict[str, set[ServerConnection]] = defaultdict(set)


async def handler(connection: ServerConnection) -> None:
    room = connection.request.path if connection.request is not None else "/"
    members = rooms[room]
    members.add(connection)
    try:
        async for frame in connection:
            broadcast(members, frame)
    finally:
        members.discard(connection)


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with serve(handler, host, port, compression=None, max_queue=None, backlog=4096, ping_interval=None):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(args.host, args.port))
