#!/usr/bin/env python3
"""HTTP helpers of the benchmark suite (standard library only; bench/run.sh calls them).

  client.py port
      print a free TCP port on 127.0.0.1
  client.py token BASE EMAIL PASSWORD
      register EMAIL, create its customer, log in; print the customer's auth token
  client.py rate URL [--auth TOKEN] [--body JSON] [--rate 200] [--duration 10] [--conns 16]
      open-loop fixed-rate POSTs: request k is due at start + k/rate, whatever happened to the
      earlier ones. Latency is counted from the due time (so a stall is not hidden by requests
      that were never sent: no coordinated omission) and, separately, from the actual send.
  client.py seq BASE N NAME=PATH=JSON [NAME=PATH=JSON ...]
      N sequential POSTs per case on one keep-alive connection, the cases interleaved
      round-robin (so drift on a busy machine hits every case alike)

Each measuring command prints one `RESULT key=value ...` line per result.
"""

import argparse
import http.client
import itertools
import json
import math
import os
import socket
import statistics
import sys
import threading
import time
import urllib.parse


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def connect(base):
    parsed = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=30)


def post(conn, path, body=None, auth=None):
    headers = {}
    data = b""
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    if auth:
        headers["Authorization"] = "Bearer " + auth
    if os.environ.get("BENCH_HOST"):
        # The store's host, for a server with TENANT_HOST_SUFFIX (bench/tenancy.sh).
        headers["Host"] = os.environ["BENCH_HOST"]
    conn.request("POST", path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def cmd_port(_args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def cmd_token(args):
    conn = connect(args.base)
    creds = {"email": args.email, "password": args.password}
    status, body = post(conn, "/auth/customer/emailpass/register", creds)
    if status != 200:
        sys.exit(f"register: {status} {body[:200]!r}")
    registration = json.loads(body)["token"]
    status, body = post(conn, "/store/customers", {"email": args.email}, auth=registration)
    if status != 200:
        sys.exit(f"create customer: {status} {body[:200]!r}")
    status, body = post(conn, "/auth/customer/emailpass", creds)
    if status != 200:
        sys.exit(f"login: {status} {body[:200]!r}")
    print(json.loads(body)["token"])


def cmd_rate(args):
    parsed = urllib.parse.urlsplit(args.url)
    base = f"{parsed.scheme}://{parsed.netloc}"
    total = int(args.rate * args.duration)
    counter = itertools.count()
    lock = threading.Lock()
    from_due, from_send, statuses, errors = [], [], {}, [0]
    start = time.perf_counter() + 0.2

    def worker():
        conn = connect(base)
        while True:
            k = next(counter)
            if k >= total:
                break
            due = start + k / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                status, _ = post(conn, parsed.path, args.body, args.auth)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = connect(base)
                with lock:
                    errors[0] += 1
                continue
            end = time.perf_counter()
            with lock:
                from_due.append(end - due)
                from_send.append(end - sent)
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    from_due.sort()
    from_send.sort()
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    ms = lambda v: f"{v * 1000:.2f}"  # noqa: E731
    print(
        f"RESULT sent={total} ok={ok} non2xx={len(from_due) - ok} errors={errors[0]} "
        f"achieved_rps={len(from_due) / elapsed:.1f} "
        f"p50_ms={ms(percentile(from_due, 50))} p99_ms={ms(percentile(from_due, 99))} "
        f"max_ms={ms(from_due[-1] if from_due else float('nan'))} "
        f"p50_send_ms={ms(percentile(from_send, 50))} p99_send_ms={ms(percentile(from_send, 99))}"
    )


def cmd_seq(args):
    cases = []
    for spec in args.cases:
        name, path, body = spec.split("=", 2)
        cases.append((name, path, body))
    conn = connect(args.base)
    times = {name: [] for name, _, _ in cases}
    statuses = {name: {} for name, _, _ in cases}
    # One untimed request per case first: connection set-up and first-use costs stay out.
    for _, path, body in cases:
        post(conn, path, body)
    for _ in range(args.n):
        for name, path, body in cases:
            t0 = time.perf_counter()
            status, _ = post(conn, path, body)
            times[name].append(time.perf_counter() - t0)
            statuses[name][status] = statuses[name].get(status, 0) + 1
    for name, _, _ in cases:
        values = sorted(times[name])
        codes = ",".join(f"{s}x{n}" for s, n in sorted(statuses[name].items()))
        print(
            f"RESULT case={name} n={len(values)} mean_ms={statistics.fmean(values) * 1000:.2f} "
            f"p50_ms={percentile(values, 50) * 1000:.2f} p99_ms={percentile(values, 99) * 1000:.2f} "
            f"min_ms={values[0] * 1000:.2f} max_ms={values[-1] * 1000:.2f} "
            f"stdev_ms={statistics.pstdev(values) * 1000:.2f} statuses={codes}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("port").set_defaults(run=cmd_port)
    p = sub.add_parser("token")
    p.add_argument("base")
    p.add_argument("email")
    p.add_argument("password")
    p.set_defaults(run=cmd_token)
    p = sub.add_parser("rate")
    p.add_argument("url")
    p.add_argument("--auth")
    p.add_argument("--body")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--conns", type=int, default=16)
    p.set_defaults(run=cmd_rate)
    p = sub.add_parser("seq")
    p.add_argument("base")
    p.add_argument("n", type=int)
    p.add_argument("cases", nargs="+", help="NAME=PATH=JSON")
    p.set_defaults(run=cmd_seq)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
