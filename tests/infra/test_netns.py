"""The multi-host comparison, short: three real hosts (network namespaces, tc-shaped links of the
`rooms` preset, a snapshot Redis each, `mpls worker --nodes` per host), MPLS then NetMax for a few
iterations each. The runs complete; probed link speeds are within ±30 % of the shaping and pull
speeds follow it; the comparison, the report's per-link plots and each run's trace are written;
every namespace is gone afterwards.
The full comparison (to a target accuracy, several seeds) is `scripts/netns_compare.py`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis

from infra.netns import testbed  # (its Testbed class is no test)
from infra.netns.hosts import ROOMS_HOSTS, Host, available
from mpls_celery.telemetry.rundir import read_json
from mpls_celery.telemetry.trace import TRACE
from scripts.netns_compare import main

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=str(available())),
    pytest.mark.xdist_group("netns"),  # one testbed at a time: its namespaces have fixed names
]


def test_short_comparison_on_three_shaped_hosts(tmp_path, capsys):
    out = tmp_path / "compare"
    # digits (scikit-learn's, always installed): a fresh machine may not have the MNIST split
    args = ["--algos", "mpls,netmax", "--iterations", "12", "--dataset", "digits"]
    results = main([*args, "--out", str(out)])
    with capsys.disabled():  # shown in CI's output even when the test passes
        print("\n" + (out / "comparison.md").read_text())
    assert [r.algo for r in results] == ["mpls", "netmax"]
    for result in results:
        assert result.iterations == 6 * 12
        assert (tmp_path / "compare" / "runs" / f"run-{result.algo}-s1" / TRACE).exists()
        # a and b are faster than c, and every pull from c crosses c's 3.75 Mbit/s link
        speeds = result.link_mbit
        assert speeds["a<-b"] > speeds["a<-c"] and speeds["b<-a"] > speeds["b<-c"], speeds
        assert all(v is None or v < ROOMS_HOSTS[2].mbit * 1.3 for k, v in speeds.items()
                   if k.endswith("c"))  # fmt: skip
        # what the workers plan with: each host pair's link, probed alone, within ±30 % of it
        probed = result.probed_mbit
        assert len(probed) == 6, probed
        for pair, mbit in probed.items():
            shaped = min(h.mbit for h in ROOMS_HOSTS if h.name in pair.split("<-"))
            assert 0.7 * shaped <= mbit <= 1.3 * shaped, (pair, mbit, shaped)
    report = read_json(out / "report" / "report.json")
    assert any("links_" in p for p in report["plots"])
    assert any("link_utilisation_" in p for p in report["plots"])
    assert set(report["links"]) == {"run-mpls-s1/mpls", "run-netmax-s1/netmax"}
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mpls-" not in namespaces


def test_the_monitor_reads_a_host_past_its_shaper_and_another_host_does_not(tmp_path):
    """The launcher's evaluations read every worker's model: on the monitor host they must not
    take the bandwidth of the links under test, while pulls between hosts stay shaped."""
    blob = b"\0" * 1_000_000  # 1 MB: 2.1 s at room C's 3.75 Mbit/s
    with testbed.Testbed(ROOMS_HOSTS, {}, tmp_path) as bed:
        c = bed.hosts["c"]
        bed.start_redis(c, testbed.SNAPSHOT_PORT)
        url = testbed.redis_url(c, testbed.SNAPSHOT_PORT)
        testbed.wait_ping(url)
        redis.Redis.from_url(url).set("blob", blob)
        read = (
            f"import redis, time; r = redis.Redis.from_url({url!r}); t = time.perf_counter(); "
            f"assert len(r.get('blob')) == {len(blob)}; print(time.perf_counter() - t)"
        )

        def seconds_from(host: Host) -> float:
            argv = host.command([sys.executable, "-c", read])
            return float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)

        seconds = {who.name: seconds_from(who) for who in (bed.monitor, bed.hosts["a"])}
    # from a: C's shaped uplink (≤ 3.75 Mbit/s, so ≥ 2 s); from the monitor: far faster
    assert seconds["a"] > len(blob) * 8 / (c.mbit * 1e6) * 0.9
    assert seconds["m"] < seconds["a"] / 10, seconds
