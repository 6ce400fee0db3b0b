"""A small SMTP sink that timestamps every accepted end-of-data dot, for the overshoot benchmark.

Accepts everything (with PIPELINING) and appends `time.time()` of each accepted
dot to a file, one line each, flushed at once: the benchmark compares these
times with the moment `mailconsole stop` returned. It runs as its own process,
so its clock reading is not delayed by the engine's event loop.
"""

from __future__ import annotations

import sys
import time

import trio


async def handle(stream: trio.SocketStream, out) -> None:  # type: ignore[no-untyped-def]
    buf = bytearray()
    in_data = False
    try:
        await stream.send_all(b"220 sink ESMTP\r\n")
        while True:
            chunk = await stream.receive_some(1 << 16)
            if not chunk:
                return
            buf += chunk
            replies = []
            while True:
                if in_data:
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        del buf[: max(0, len(buf) - 4)]  # keep a possible partial terminator
                        break
                    out.write(f"{time.time():.6f}\n")
                    out.flush()
                    del buf[: end + 5]
                    in_data = False
                    replies.append(b"250 accepted")
                    continue
                i = buf.find(b"\r\n")
                if i < 0:
                    break
                cmd = bytes(buf[:4]).upper()
                del buf[: i + 2]
                if cmd in (b"EHLO", b"HELO"):
                    replies.append(b"250-sink\r\n250 PIPELINING")
                elif cmd == b"DATA":
                    replies.append(b"354 go on")
                    in_data = True
                    buf[0:0] = b"\r\n"  # the body's first line follows this line end
                elif cmd == b"QUIT":
                    await stream.send_all(b"221 bye\r\n")
                    return
                else:
                    replies.append(b"250 ok")
            if replies:
                await stream.send_all(b"\r\n".join(replies) + b"\r\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def main(port: int, path: str) -> None:
    with open(path, "a", encoding="ascii") as out:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        await trio.serve_listeners(lambda s: handle(s, out), listeners)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), sys.argv[2])
