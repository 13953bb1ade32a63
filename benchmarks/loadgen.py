"""A small closed-loop HTTP/1.1 load generator: C keep-alive connections, pre-built requests.

Run as a subprocess (pinned by the caller): ``python loadgen.py REQUESTS_FILE HOST PORT CONCURRENCY``.
``REQUESTS_FILE`` is a pickle of a list of raw request bytes, sent once each in order by whichever
connection is free. Prints one JSON line: count, seconds, requests/s, latency percentiles (ms),
statuses, and how many answers said ``duplicate``.

asyncio on raw streams costs ~30-50 µs of CPU per request, a small fraction of what the server
under test spends, so the generator is not what limits either endpoint (see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
from collections import Counter


async def _connection(host: str, port: int, requests: list[bytes], state: dict, latencies: list[int],
                      statuses: Counter, bodies: Counter) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            i = state["next"]
            if i >= len(requests):
                return
            state["next"] = i + 1
            started = time.perf_counter_ns()
            writer.write(requests[i])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await reader.readexactly(length) if length else b""
            latencies[i] = time.perf_counter_ns() - started
            statuses[status] += 1
            if b"duplicate" in body:
                bodies["duplicate"] += 1
            elif b"accepted" in body:
                bodies["accepted"] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index] / 1e6


async def run(requests: list[bytes], host: str, port: int, concurrency: int) -> dict:
    latencies = [0] * len(requests)
    statuses: Counter = Counter()
    bodies: Counter = Counter()
    state = {"next": 0}
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, requests, state, latencies, statuses, bodies) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "count": len(requests),
        "seconds": elapsed,
        "rps": len(requests) / elapsed,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] / 1e6 if ordered else 0.0,
        "statuses": {str(k): v for k, v in statuses.items()},
        "latencies_ns": latencies,  # for percentiles over several slices
        "bodies": dict(bodies),
        "cpu_seconds": time.process_time(),
    }


def main() -> None:
    path, host, port, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(path, "rb") as f:
        requests = pickle.load(f)
    result = asyncio.run(run(requests, host, port, concurrency))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
