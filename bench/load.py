"""A bounded HTTP load test of `kb serve` on loopback: throughput, p50/p99 latency, failures.

    python bench/load.py --url http://127.0.0.1:8000 --requests 3000 --concurrency 8 [--json]

Requests cycle through list, show, search, query, path and graph endpoints. Every response must
be 200 (or the 404 a missing record deserves); anything else, or a connection error, is a failure.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import quote, urlparse

PATHS = [
    "/query?q=" + quote("which method to explain my CNN's prediction?"),
    "/query?q=" + quote("I only have API access, how do I explain one prediction?"),
    "/records?kind=method",
    "/records/method/integrated-gradients",
    "/search?q=gradient",
    "/path?to=method:integrated-gradients",
    "/graph?around=method:integrated-gradients&depth=1",
    "/records/method/no-such-method",
]


def run_load(url: str, requests: int, concurrency: int, deadline_s: float = 120.0) -> dict:
    parsed = urlparse(url)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    stop_at = time.monotonic() + deadline_s

    def worker():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        for i in counter:
            if time.monotonic() > stop_at:
                break
            path = PATHS[i % len(PATHS)]
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200 or (resp.status == 404 and "no-such" in path)
                json.loads(body)
                reason = None if ok else f"{resp.status} {path} {body[:200]!r}"
            except Exception as exc:  # a failed request is data here, not a crash
                reason = f"{type(exc).__name__}: {exc} ({path})"
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if reason:
                    failures.append(reason)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "requests": len(lat), "failures": len(failures), "failure_samples": failures[:5],
        "seconds": round(elapsed, 3), "throughput_rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = run_load(a.url, a.requests, a.concurrency)
    print(json.dumps(result, indent=2) if a.json else
          f"{result['requests']} requests in {result['seconds']} s: {result['throughput_rps']} req/s, "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {result['failures']} failed")


if __name__ == "__main__":
    main()
