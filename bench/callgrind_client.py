#!/usr/bin/env python3
"""Sends N requests of one kind over one keep-alive connection, sequentially, to a server on
127.0.0.1:PORT. Used by scripts/bench-core to count instructions per request under callgrind
(the difference between two runs with different N, divided by the difference in N)."""
import socket
import sys

port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(n):
    if kind == "post":
        body = '{"correlationId":"%08x-0000-4000-8000-%012x","amount":19.90}' % (7, i)
        req = ("POST /payments HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (len(body), body))
    else:
        req = ("GET /payments-summary?from=2025-07-10T12:34:41.000Z&to=2025-07-10T12:34:54.500Z "
               "HTTP/1.1\r\nHost: b\r\n\r\n")
    s.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += s.recv(4096)
s.close()
