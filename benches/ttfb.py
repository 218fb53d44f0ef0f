#!/usr/bin/env python3
"""Client-side timing for benches/timer.sh: one keep-alive connection, N confirms with one
X-Gazua-Latency each, time from writing the request to its first response byte.

    benches/ttfb.py PORT LATENCY COUNT      # prints: p50_ms p99_ms (time to first byte)

Each request confirms a new payment (the memory ledger refuses a repeated one). The clock is
time.perf_counter_ns; Python's own overhead (~10-30 us per request) is part of the figure.
"""
import socket
import sys
import time


def main():
    port, latency, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    run = time.time_ns() % 10**9
    samples = []
    for n in range(count):
        body = ('{"paymentKey":"pk_ttfb_%d_%d","orderId":"order-ttfb-%d-%d","amount":15000}'
                % (run, n, run, n)).encode()
        head = ("POST /v1/payments/confirm HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nX-Gazua-Latency: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (latency, len(body))).encode()
        start = time.perf_counter_ns()
        sock.sendall(head + body)
        data = sock.recv(65536)
        first = time.perf_counter_ns()
        if not data:
            sys.exit("the server closed the connection")
        # Read the rest of the answer (Content-Length) before the next request.
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        header, rest = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in header.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(rest) < length:
            rest += sock.recv(65536)
        if n >= count // 10:  # the first tenth warms up the connection
            samples.append((first - start) / 1e6)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print("%.3f %.3f" % (pick(0.50), pick(0.99)))


if __name__ == "__main__":
    main()
