#!/usr/bin/env python3
"""A minimal WebSocket client (standard library only) for tests/invoke.sh and the README's
quick start: connect to URL, print `ready` once connected, then print the first text frame the
server sends, and exit. A wss:// URL is verified against the system's CAs, or against the CA in
DEV_CA when it is set (`make dev DEV_ARGS=--tls` exports it in target/dev.env). Fails with a
clear line on anything else (a certificate not trusted, non-101 answer, close, timeout)."""
import base64
import os
import socket
import ssl
import sys
import urllib.parse


def main() -> int:
    url = urllib.parse.urlsplit(sys.argv[1])
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    secure = url.scheme == "wss"
    sock = socket.create_connection((url.hostname, url.port or (443 if secure else 80)), timeout=timeout)
    if secure:
        context = ssl.create_default_context(cafile=os.environ.get("DEV_CA") or None)
        try:
            sock = context.wrap_socket(sock, server_hostname=url.hostname)
        except ssl.SSLError as e:
            print(f"ws-listen: TLS handshake failed: {e}", file=sys.stderr)
            return 1
    key = base64.b64encode(os.urandom(16)).decode()
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    sock.sendall(
        (f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            print("ws-listen: connection closed during the handshake", file=sys.stderr)
            return 1
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        print(f"ws-listen: handshake refused: {status.decode(errors='replace')}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    buf = head.split(b"\r\n\r\n", 1)[1]

    def take(n: int) -> bytes:
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    try:
        while True:
            b0, b1 = take(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                length = int.from_bytes(take(2), "big")
            elif length == 127:
                length = int.from_bytes(take(8), "big")
            payload = take(length)
            if opcode == 0x1:
                print(payload.decode(), flush=True)
                return 0
            if opcode == 0x8:
                print("ws-listen: the server closed the connection", file=sys.stderr)
                return 1
    except (EOFError, socket.timeout):
        print("ws-listen: no message in time", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
