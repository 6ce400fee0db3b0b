"""A small SMTP sink that timestamps every accepted end-of-data dot, for the overshoot benchmark.

Accepts everything (with PIPELINING) and appends the arrival time of each
accepted dot to a file, one line each, flushed at once: the benchmark compares
these times with the moment `mailconsole stop` returned. The time is the
kernel's receive timestamp of the data that completed the dot (SO_TIMESTAMPNS,
Linux), not the moment this process got around to parsing it: on a loaded
machine the sink can lag by hundreds of milliseconds, which would count a dot
sent before the stop as sent after it. Elsewhere it falls back to time.time().

`--host` picks the address to listen on (default 127.0.0.1); `--peers` adds the
client's address and the message's first recipient to each line ("TIME ADDRESS
RCPT"), for tests that tell engine hosts and deliveries apart. `--delay-ms MS`
answers each dot only after MS milliseconds (a slow relay: each connection then
carries at most one message per MS; bench/throughput.py --slow-relay).
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time

import trio

SO_TIMESTAMPNS = 35  # Linux; also the control message type (SCM_TIMESTAMPNS)
TIMESPEC = struct.Struct("@qq")


async def receive(sock: trio.socket.SocketType, kernel_stamps: bool) -> tuple[bytes, float]:
    """Some data and the time it reached this host."""
    if not kernel_stamps:
        data = await sock.recv(1 << 16)
        return data, time.time()
    data, ancillary, _flags, _addr = await sock.recvmsg(1 << 16, socket.CMSG_SPACE(TIMESPEC.size))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(payload)
            return data, sec + nsec / 1e9
    return data, time.time()


async def handle(stream: trio.SocketStream, out, peers: bool = False,  # type: ignore[no-untyped-def]
                 delay: float = 0.0) -> None:
    buf = bytearray()
    in_data = False
    sock = stream.socket
    peer = sock.getpeername()[0] if peers else ""
    rcpt = ""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        kernel_stamps = sys.platform.startswith("linux")
    except OSError:
        kernel_stamps = False
    try:
        await stream.send_all(b"220 sink ESMTP\r\n")
        while True:
            chunk, arrived = await receive(sock, kernel_stamps)
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
                    out.write(f"{arrived:.6f} {peer} {rcpt}\n" if peers else f"{arrived:.6f}\n")
                    out.flush()
                    del buf[: end + 5]
                    in_data = False
                    if delay:
                        if replies:  # what came before the dot is answered at once
                            await stream.send_all(b"\r\n".join(replies) + b"\r\n")
                            replies = []
                        await trio.sleep(delay)  # the relay takes its time over each message
                    replies.append(b"250 accepted")
                    continue
                i = buf.find(b"\r\n")
                if i < 0:
                    break
                cmd = bytes(buf[:4]).upper()
                if peers and cmd == b"RCPT" and not rcpt:
                    # "RCPT TO:<a@b>": the address between the angle brackets.
                    rcpt = bytes(buf[:i]).partition(b"<")[2].partition(b">")[0].decode("ascii", "replace")
                elif peers and cmd == b"MAIL":
                    rcpt = ""
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
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client went away (a reset is an OSError of the raw socket): only this connection ends


async def main(port: int, path: str, host: str = "127.0.0.1", peers: bool = False, delay_ms: float = 0.0) -> None:
    with open(path, "a", encoding="ascii") as out:
        listeners = await trio.open_tcp_listeners(port, host=host, backlog=1024)
        await trio.serve_listeners(lambda s: handle(s, out, peers, delay_ms / 1000), listeners)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("path", help="file the dots' times are appended to")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--peers", action="store_true", help="add the client's address and first recipient")
    ap.add_argument("--delay-ms", type=float, default=0.0, metavar="MS", help="answer each dot after MS milliseconds")
    args = ap.parse_args()
    trio.run(main, args.port, args.path, args.host, args.peers, args.delay_ms)
