#!/usr/bin/env python3
"""Pipeline benchmarks of one payrelay instance against two zero-delay simulators (issue 9).

A run: both processors fail, N payments are posted and held (nothing can be forwarded), then
default recovers and the instance drains the backlog. Measured per run:
  - drain time: from the recovery until default stored all N (the simulator's admin summary,
    polled so the measured instance does no extra work), which includes noticing the recovery
    (the next single probe, at most PROBE_INTERVAL_MS later);
  - forwarded/s: N over the time from default's first stored payment to its last;
  - CPU per forwarded payment: the instance's on-CPU time during the drain
    (/proc/<pid>/schedstat, ns) over N, and the same for the default simulator, which does
    comparable work per payment (parse, answer) and serves as the baseline of the same run.

Usage: pipeline.py PAYRELAY SIM --backlog N --runs R [--callgrind N]
Loopback only; every wait is bounded. The instance runs on CPU 0, the simulators and this
driver on CPU 1.

With --callgrind N, two more runs under valgrind's callgrind (backlogs N/4 and N) count the
instance's instructions from the recovery to the end of the drain (counters zeroed at the
recovery, dumped after); their difference over the difference in payments is the cost per
forwarded payment, free of fixed costs.
"""
import argparse
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, secs=60):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"nothing listens on {port} after {secs} s")


def http(port, method, path, body=None, token=False):
    """One request on a fresh connection; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = f"{method} {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
    if token:
        head += "X-Rinha-Token: 123\r\n"
    data = b""
    if body is not None:
        data = body.encode()
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    raw = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        raw += chunk
    s.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        rest = out
    return status, rest.decode()


def post_backlog(port, n, tag):
    """Posts n payments pipelined over 4 connections; every answer must be 202."""
    conns = 4
    per = [range(c, n, conns) for c in range(conns)]
    socks = []
    for ids in per:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        buf = []
        for i in ids:
            body = '{"correlationId":"%08x-0000-4000-8000-%012x","amount":19.90}' % (tag, i)
            buf.append(
                "POST /payments HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        s.sendall("".join(buf).encode())
        socks.append((s, len(ids)))
    for s, expected in socks:
        got = b""
        while got.count(b"HTTP/1.1 ") < expected:
            chunk = s.recv(1 << 20)
            if not chunk:
                sys.exit("connection closed while posting the backlog")
            got += chunk
        if got.count(b"HTTP/1.1 202") != expected:
            sys.exit("a payment of the backlog was not answered 202")
        s.close()


def stored(port):
    status, body = http(port, "GET", "/admin/payments-summary", token=True)
    assert status == 200, body
    return json.loads(body)["totalRequests"]


def set_failure(port, failing):
    status, body = http(port, "PUT", "/admin/configurations/failure",
                        json.dumps({"failure": failing}), token=True)
    assert status == 200, body


def on_cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


class Stack:
    """Two simulators and one instance, torn down on exit."""

    def __init__(self, payrelay, sim, work, valgrind_out=None):
        self.procs = []
        self.sims = [free_port(), free_port()]
        for port, fee in zip(self.sims, ["0.05", "0.15"]):
            env = dict(os.environ, PORT=str(port), SIM_LISTEN=f"127.0.0.1:{port}",
                       TRANSACTION_FEE=fee, SIM_FAILURE="true")
            self.procs.append(subprocess.Popen(["taskset", "-c", "1", sim], env=env,
                                               stderr=subprocess.DEVNULL))
        self.api = free_port()
        env = dict(os.environ,
                   LISTEN=f"127.0.0.1:{self.api}",
                   SHARED_MEMORY_PATH=os.path.join(work, f"bench-{self.api}.seg"),
                   SEGMENT_CAPACITY="131072",
                   PAYMENT_PROCESSOR_URL_DEFAULT=f"http://127.0.0.1:{self.sims[0]}",
                   PAYMENT_PROCESSOR_URL_FALLBACK=f"http://127.0.0.1:{self.sims[1]}")
        cmd = ["taskset", "-c", "0"]
        if valgrind_out:
            cmd += ["valgrind", "--tool=callgrind", f"--callgrind-out-file={valgrind_out}"]
        self.instance = subprocess.Popen(cmd + [payrelay], env=env, stderr=subprocess.DEVNULL)
        self.procs.append(self.instance)
        for port in self.sims:
            wait_port(port)
        wait_port(self.api, 120 if valgrind_out else 30)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def held_backlog(stack, n, tag):
    post_backlog(stack.api, n, tag)
    # Held, not forwarded: both processors still fail.
    if stored(stack.sims[0]) + stored(stack.sims[1]) != 0:
        sys.exit("payments were stored while both processors failed")


def drain(stack, n, limit_s=120):
    """Recovers default and waits until it stored all n; returns timings."""
    start = time.monotonic()
    set_failure(stack.sims[0], False)
    first = None
    deadline = start + limit_s
    while True:
        count = stored(stack.sims[0])
        now = time.monotonic()
        if count > 0 and first is None:
            first = now
        if count >= n:
            return start, first, now
        if now > deadline:
            sys.exit(f"default stored {count} of {n} after {limit_s} s")
        time.sleep(0.002)


def one_run(payrelay, sim, work, n, tag):
    stack = Stack(payrelay, sim, work)
    try:
        held_backlog(stack, n, tag)
        pid = stack.instance.pid
        # taskset execs the binary, so the pid is the instance's.
        cpu0, sim0 = on_cpu_ns(pid), on_cpu_ns(stack.procs[0].pid)
        start, first, end = drain(stack, n)
        # The answers of the last payments may still be on their way back: let them land.
        time.sleep(0.05)
        cpu1, sim1 = on_cpu_ns(pid), on_cpu_ns(stack.procs[0].pid)
        status, stats = http(stack.api, "GET", "/stats")
        seg = json.loads(stats)["segment"]
        if seg["doneDefault"] != n or seg["pending"] != 0:
            sys.exit(f"not every payment recorded done on default: {seg}")
        if stored(stack.sims[1]) != 0:
            sys.exit("fallback stored payments although it kept failing")
        return {
            "drain_s": end - start,
            "rate": n / max(end - first, 1e-9),
            "cpu_us": (cpu1 - cpu0) / 1000 / n,
            "sim_cpu_us": (sim1 - sim0) / 1000 / n,
        }
    finally:
        stack.close()


def callgrind_drain(payrelay, sim, work, n):
    """Instructions the instance executes from default's recovery until n payments drained."""
    out = os.path.join(work, f"pipeline-{n}.callgrind")
    stack = Stack(payrelay, sim, work, valgrind_out=out)
    try:
        held_backlog(stack, n, 0xC0 + n % 16)
        pid = stack.instance.pid

        def control(flag):
            subprocess.run(["callgrind_control", flag, str(pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        control("-z")
        drain(stack, n, limit_s=300)
        time.sleep(0.2)
        control("-d")
        files = sorted(glob.glob(out + "*"), key=os.path.getmtime)
        for line in open(files[-1]):
            if line.startswith(("summary:", "totals:")):
                value = int(line.split()[1])
        return value
    finally:
        stack.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("payrelay")
    ap.add_argument("sim")
    ap.add_argument("--backlog", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--callgrind", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="payrelay-pipeline-") as work:
        print("| backlog | runs | drain after recovery (median) | forwarded/s (median) "
              "| payrelay CPU per payment | simulator CPU per payment (baseline) | ratio |")
        print("|---|---|---|---|---|---|---|")
        for n in args.backlog:
            results = [one_run(args.payrelay, args.sim, work, n, 0xB0 + k) for k in range(args.runs)]
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            spread = ", ".join(f"{r['drain_s'] * 1000:.0f}" for r in results)
            print(f"| {n} | {args.runs} | {med['drain_s'] * 1000:.0f} ms ({spread}) "
                  f"| {med['rate']:.0f} | {med['cpu_us']:.1f} µs | {med['sim_cpu_us']:.1f} µs "
                  f"| {med['cpu_us'] / med['sim_cpu_us']:.2f} |", flush=True)
        if args.callgrind:
            small, big = args.callgrind // 4, args.callgrind
            ir = {k: callgrind_drain(args.payrelay, args.sim, work, k) for k in (small, big)}
            per = (ir[big] - ir[small]) / (big - small)
            print()
            print(f"callgrind: {per:.0f} instructions per forwarded payment (drains of {small} and "
                  f"{big}: {ir[small]} and {ir[big]} instructions from the recovery on; the "
                  f"difference over {big - small} payments removes fixed costs such as the wait "
                  f"for the probe that notices the recovery)")


if __name__ == "__main__":
    main()
