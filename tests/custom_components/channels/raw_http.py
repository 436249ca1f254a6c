"""Oversized requests sent over a raw socket, the way an attacker would: a chunked body with no
Content-Length, or a Content-Length the client never finishes sending. `requests` cannot read a
response while it is still uploading, so it sees a reset instead of the server's 413."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from typing import Optional

CHUNK = 64 * 1024


@dataclass
class RawResult:
    status: int  # 0: no response
    sent: int  # body bytes the client got into the connection before the server stopped it
    body: bytes


def _head(port: int, path: str, content_type: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n{extra}\r\n").encode()


def _read_response(sock: socket.socket, sent: int) -> RawResult:
    data = b""
    try:
        while True:
            more = sock.recv(65536)
            if not more:
                break
            data += more
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    break
    except (TimeoutError, ConnectionResetError):
        pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return RawResult(status, sent, data.partition(b"\r\n\r\n")[2])


def post_chunked(port: int, path: str, total: int, content_type: str = "application/json",
                 headers: str = "", timeout: float = 60) -> RawResult:
    """POST up to `total` bytes as chunks; stop sending as soon as the server answers or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_head(port, path, content_type, headers + "Transfer-Encoding: chunked\r\n"))
        piece, sent = b"%x\r\n" % CHUNK + b"[" * CHUNK + b"\r\n", 0
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:  # the server answered (or closed): stop uploading
                    break
                sock.sendall(piece)
                sent += CHUNK
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _read_response(sock, sent)


def post_declared(port: int, path: str, declared: int, content_type: str = "application/json",
                  headers: str = "", timeout: float = 60, body: Optional[bytes] = None) -> RawResult:
    """Announce a `declared`-byte body, send only its first bytes, and read what the server says."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        start = body if body is not None else b"[" * 1024
        sock.sendall(_head(port, path, content_type, headers + f"Content-Length: {declared}\r\n") + start)
        return _read_response(sock, len(start))
