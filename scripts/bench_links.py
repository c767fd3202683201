"""Bytes and time of one whole-model pull (LeNet-5, the paper's MNIST model) per wire format, over
tc-shaped links of 2, 10 and 40 Mbit/s between network namespaces: a Redis on each sender host,
the puller fetching every layer (MGET) and decoding it (checksum, shape, NaN/Inf checks) in its
own namespace. On the paper's links bytes matter more than CPU. Needs root and iproute2.

    .venv/bin/python -m scripts.bench_links [--json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis
import torch

from infra.netns.hosts import Host, available
from infra.netns.testbed import SNAPSHOT_PORT, Testbed, redis_url, wait_ping
from mpls_celery.core.layering import model_layers, read_layer
from mpls_celery.core.models import BUILTIN_MODELS, build_model
from mpls_celery.runtime.worker.codec import encode_tensors
from mpls_celery.runtime.worker.layout import layout_of, layout_to_json

PULLER = Host("p", "10.77.0.20", 1000)
SENDERS = (
    Host("s2", "10.77.0.21", 2),
    Host("s10", "10.77.0.22", 10),
    Host("s40", "10.77.0.23", 40),
)
FORMATS = (("float32", "none"), ("float32", "lz4"), ("float16", "lz4"), ("bfloat16", "lz4"))
REPEATS = 3

FETCH = r"""
import json, statistics, sys, time, redis
from mpls_celery.runtime.worker.codec import decode_tensors
from mpls_celery.runtime.worker.layout import layout_from_json
job = json.loads(sys.stdin.read())
layout = layout_from_json(job["layout"])
out = []
for url, prefix in job["pulls"]:
    client = redis.Redis.from_url(url)
    client.ping()  # connected before timing, as a worker's pooled connection is
    keys = [f"{prefix}:{l}" for l in range(len(layout))]
    times = []
    for _ in range(job["repeats"]):
        started = time.perf_counter()
        blobs = client.mget(keys)
        for l, blob in enumerate(blobs):
            decode_tensors(blob, layout[l])
        times.append(time.perf_counter() - started)
    out.append(statistics.median(times))
print(json.dumps(out))
"""


def encoded_model() -> tuple[list[list[bytes]], list[list[list[Any]]]]:
    torch.manual_seed(0)
    model = build_model(BUILTIN_MODELS["lenet5"], (1, 28, 28), 10)
    with torch.no_grad():  # trained-looking weights, not a fresh init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    layers, state = model_layers(model), model.state_dict()
    blobs = [
        [encode_tensors(read_layer(state, layer), {}, dtype, compression) for layer in layers]
        for dtype, compression in FORMATS
    ]
    return blobs, layout_to_json(layout_of(layers, state))


def main() -> list[dict[str, object]]:
    blobs, layout = encoded_model()
    pulls, rows = [], []
    with tempfile.TemporaryDirectory() as tmp, Testbed((PULLER, *SENDERS), {}, Path(tmp)) as bed:
        for host in SENDERS:
            bed.start_redis(host, SNAPSHOT_PORT)
        for host in SENDERS:
            url = redis_url(host, SNAPSHOT_PORT)
            wait_ping(url)
            client = redis.Redis.from_url(url)
            for f, layer_blobs in enumerate(blobs):
                for layer, blob in enumerate(layer_blobs):
                    client.set(f"f{f}:{layer}", blob)
                pulls.append([url, f"f{f}"])
                rows.append({"mbit": host.mbit, "format": "+".join(FORMATS[f]),
                             "bytes": sum(len(b) for b in layer_blobs)})  # fmt: skip
        job = json.dumps({"layout": layout, "pulls": pulls, "repeats": REPEATS})
        done = subprocess.run(PULLER.command([sys.executable, "-c", FETCH]), input=job,
                              capture_output=True, text=True, check=True)  # fmt: skip
    for row, seconds in zip(rows, json.loads(done.stdout), strict=True):
        row["seconds"] = round(seconds, 4)
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    raw = {r["mbit"]: float(str(r["seconds"])) for r in rows if r["format"] == "float32+none"}
    print(
        "| link | wire format | bytes per pull | seconds per pull | goodput | speed-up vs float32 raw |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        seconds, nbytes = float(str(r["seconds"])), int(str(r["bytes"]))
        print(f"| {r['mbit']} Mbit/s | {r['format']} | {nbytes:,} | {seconds:.3f} | "
              f"{nbytes * 8 / seconds / 1e6:.2f} Mbit/s | {raw[r['mbit']] / seconds:.2f}× |")  # fmt: skip
    print(f"(median of {REPEATS} pulls of the whole model each)")


if __name__ == "__main__":
    if available():  # `make bench` on a machine without root or iproute2
        print(f"bench_links skipped: {available()}")
        sys.exit(0)
    result = main()
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        print_table(result)
