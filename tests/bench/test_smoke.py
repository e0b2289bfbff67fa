"""A seconds-long run of the benchmark suite's code paths (seed, serve, load, reference, outputs): it
checks the suite still works and that its JSON has every key with positive figures; never how fast."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .harness import profile_named, run

EXPECTED = {"profile", "started_at", "machine", "seconds_per_load", "seed", "home_timeline", "posting",
            "memory", "inbox_ingest", "fanout", "end_to_end", "rsa", "duration_s"}


def _numbers(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for key, v in value.items() for item in _numbers(v, f"{path}.{key}")]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(path, value)]
    return []


def test_bench_smoke(tmp_path: Path) -> None:
    if "sqlite" not in os.environ.get("VOISINAGE_TEST_DATABASES", "sqlite,postgresql"):
        pytest.skip("sqlite not selected")
    out = tmp_path / "results"
    run(profile_named("smoke"), out, tmp_path / "work", log=lambda _msg: None)
    results = json.loads((out / "latest.json").read_text())
    assert EXPECTED <= set(results)
    assert (out / "latest.md").read_text().startswith("# Benchmark results")
    timeline = results["home_timeline"]["sqlite"]["200"]
    assert timeline["statuses"] == 20
    assert set(timeline["c2"]) >= {"rps", "p50_ms", "p99_ms", "reference_rps", "ratio_to_reference"}
    assert timeline["c2"]["errors"] == 0
    assert set(results["posting"]["sqlite"]) >= {"statuses_per_s", "p99_ms", "concurrency"}
    assert set(results["memory"]["sqlite"]) == {"startup_first_s", "rss_idle_first_mb", "startup_s", "rss_idle_mb",
                                                 "rss_after_timeline_mb", "rss_after_posting_mb", "rss_after_inbox_mb",
                                                 "rss_after_fanout_mb"}
    ingest = results["inbox_ingest"]["sqlite"]
    assert ingest["accepted"] == ingest["processed"] == ingest["activities"] and ingest["errors"] == 0
    assert set(results["rsa"]) == {"sign_per_s", "verify_per_s"}
    fanout = results["fanout"]["sqlite"]
    assert fanout["delivered"] == fanout["expected"] == 2 * 3  # every post reached every receiver, once
    e2e = results["end_to_end"]["sqlite"]
    assert e2e["arrived"] == e2e["posts"] == 3 and e2e["errors"] == 0  # every post on A reached B's home
    assert set(e2e) >= {"posts_per_s", "p50_ms", "p99_ms", "ratio_to_target_100", "ratio_to_takahe"}
    assert "## End to end" in (out / "latest.md").read_text()
    numbers = _numbers(results)
    assert numbers
    # Error counts are the only figures allowed to be zero.
    bad = [(path, v) for path, v in numbers if v <= 0 and not path.endswith(".errors")]
    assert not bad, bad
