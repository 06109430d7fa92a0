"""Load test: concurrent gradio_client users against a local app, mixing /predict and /explain.

    python -m bench.load [--clients 16 --requests 20 --explain-every 4 --memory-requests 500]
    python -m bench.load --url http://127.0.0.1:7860/ [--pid PID]   # an app that is already running

Launches `app.py` on a free 127.0.0.1 port (fer_demo_testing/local_app.py) unless --url is
given (loopback addresses only). Each client first sends `--warmup` requests
(alternately /predict and /explain), then `--requests` timed ones; one request in `--explain-every` is a GradCAM
/explain of an example face, the rest /predict of an example photo. If fewer
than `--memory-requests` requests were sent after the warm-up, the clients keep
going (untimed) until that many have been, so that the memory figure covers
them. Stops by itself after `--max-seconds`.

Prints one JSON line: requests, failures (must be 0), latency p50 / p95 / max
(ms, timed phase), throughput (requests/s, timed phase) and the server's RSS
(VmRSS, MB) at start, after the warm-up, after the timed phase and at the end,
with its growth over the requests after the warm-up (flat = no model copies or
CAM hooks left behind per request), and a trace of it every `--trace-every` requests.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time

import numpy as np

from fer_demo_testing.local_app import check_loopback, launched_app, rss_mb
from fer_demo.core.paths import EXAMPLES_DIR

PHOTOS = sorted((EXAMPLES_DIR / "photos").glob("*.jpg"))
FACES = sorted((EXAMPLES_DIR / "fer2013").glob("*.png"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16, help="concurrent gradio_client clients (default 16)")
    p.add_argument("--requests", type=int, default=20, help="timed requests per client (default 20)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed requests per client first, alternately /predict and /explain (default 2)")
    p.add_argument("--explain-every", type=int, default=4,
                   help="one request in N is /explain, the rest /predict (default 4: 3:1)")
    p.add_argument("--memory-requests", type=int, default=500,
                   help="keep sending (untimed) until this many requests followed the warm-up (default 500; "
                        "0: no extra requests)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (default 120)")
    p.add_argument("--max-seconds", type=float, default=900.0,
                   help="stop sending after this long, whatever is left (default 900)")
    p.add_argument("--url", help="an app already running on a loopback address (default: launch app.py)")
    p.add_argument("--pid", type=int, help="with --url: the app's process id, for its memory")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the launched app")
    p.add_argument("--trace-every", type=int, default=100,
                   help="sample the server's RSS every N requests after the warm-up (default 100)")
    return p.parse_args(argv)


def percentile(values, q) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


class Load:
    """Shared counters of the clients: one phase at a time ('warmup', 'timed', 'soak')."""

    def __init__(self, args, url, pid=None):
        self.args, self.url, self.pid = args, url, pid
        self.rss_trace: list[list[float]] = []  # [requests after the warm-up, server RSS MB]
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.counts = {"warmup": 0, "timed": 0, "soak": 0}
        self.by_kind = {"predict": 0, "explain": 0}
        self.deadline = time.monotonic() + args.max_seconds
        self.stopped_early = False
        self.soak_left = 0

    def request(self, client, n: int, phase: str) -> None:
        from gradio_client import handle_file

        if phase == "warmup":  # both kinds, so that the CAM model copy exists before the memory baseline
            explain = self.args.explain_every > 0 and n % 2 == 1
        else:
            explain = self.args.explain_every > 0 and n % self.args.explain_every == self.args.explain_every - 1
        start = time.perf_counter()
        try:
            if explain:
                face = FACES[n % len(FACES)]
                job = client.submit(handle_file(str(face)), "GradCAM", "layer3", "predicted", False,
                                    api_name="/explain")
                out = job.result(timeout=self.args.timeout)
                ok = len(out["maps"]) == 1 and len(out["maps"][0]["cam"]) == 48
            else:
                photo = PHOTOS[n % len(PHOTOS)]
                job = client.submit(handle_file(str(photo)), False, api_name="/predict")
                out = job.result(timeout=self.args.timeout)
                ok = isinstance(out, dict) and "faces" in out
            error = None if ok else "unexpected answer"
        except Exception as e:  # counted, and the first few reported
            error = f"{type(e).__name__}: {str(e)[:200]}"
        elapsed = time.perf_counter() - start
        with self.lock:
            self.counts[phase] += 1
            self.by_kind["explain" if explain else "predict"] += 1
            if error:
                self.failures.append(f"{phase} {'explain' if explain else 'predict'}: {error}")
            elif phase == "timed":
                self.latencies.append(elapsed)
            done = self.counts["timed"] + self.counts["soak"]
            if self.pid and phase != "warmup" and self.args.trace_every and done % self.args.trace_every == 0:
                self.rss_trace.append([done, round(rss_mb(self.pid) or 0.0, 1)])

    def out_of_time(self) -> bool:
        if time.monotonic() > self.deadline:
            self.stopped_early = True
        return self.stopped_early

    def take_soak(self) -> bool:
        with self.lock:
            if self.soak_left <= 0:
                return False
            self.soak_left -= 1
            return True


def run_phase(load: Load, clients, phase: str, per_client: int | None, offset: itertools.count) -> float:
    """Every client sends `per_client` requests (or, for 'soak', shares `load.soak_left`); returns seconds."""
    def worker(client):
        k = 0
        while not load.out_of_time():
            if phase == "soak":
                if not load.take_soak():
                    break
            elif k >= per_client:
                break
            load.request(client, next(offset), phase)  # one global sequence: exactly 1 in N is /explain
            k += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def second_half_growth(trace: list[list[float]]) -> float | None:
    """RSS growth over the second half of the requests traced: about 0 once memory is flat."""
    if len(trace) < 4:
        return None
    half = trace[len(trace) // 2 - 1]
    return round(trace[-1][1] - half[1], 1)


def run(args, url: str, pid: int | None) -> dict:
    from gradio_client import Client

    memory = {"start": rss_mb(pid) if pid else None}
    clients = [Client(url, verbose=False) for _ in range(args.clients)]
    load = Load(args, url, pid)
    offset = itertools.count()
    run_phase(load, clients, "warmup", args.warmup, offset)
    memory["after_warmup"] = rss_mb(pid) if pid else None
    timed_s = run_phase(load, clients, "timed", args.requests, offset)
    memory["after_timed"] = rss_mb(pid) if pid else None
    load.soak_left = max(0, args.memory_requests - load.counts["timed"])
    if load.soak_left:
        run_phase(load, clients, "soak", None, offset)
    memory["end"] = rss_mb(pid) if pid else None
    after_warmup = load.counts["timed"] + load.counts["soak"]
    growth = (memory["end"] - memory["after_warmup"]) if pid and memory["end"] and memory["after_warmup"] else None
    lat = load.latencies
    for close in (getattr(c, "close", None) for c in clients):
        if close:
            try:
                close()
            except Exception:
                pass
    return {
        "bench": "load",
        "url": url,
        "clients": args.clients,
        "requests": sum(load.counts.values()),
        "requests_timed": load.counts["timed"],
        "requests_by_kind": load.by_kind,
        "failed": len(load.failures),
        "failures_sample": load.failures[:5],
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "max_ms": round(max(lat) * 1000, 1) if lat else None,
        "throughput_rps": round(len(lat) / timed_s, 2) if timed_s > 0 and lat else None,
        "rss_mb": {k: round(v, 1) if v else None for k, v in memory.items()},
        "rss_growth_mb": round(growth, 1) if growth is not None else None,
        "rss_growth_over_requests": after_warmup,
        "rss_trace": load.rss_trace,
        "rss_growth_second_half_mb": second_half_growth(load.rss_trace),
        "stopped_early": load.stopped_early,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.url:
        url = check_loopback(args.url if args.url.endswith("/") else args.url + "/")
        result = run(args, url, args.pid)
    else:
        env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
        with launched_app(env=env) as server:
            result = run(args, server.url, server.pid)
            result["url"] = "launched app.py"
    print(json.dumps(result))
    return 0 if result["failed"] == 0 and not result["stopped_early"] else 1


if __name__ == "__main__":
    sys.exit(main())
