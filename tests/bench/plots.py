"""PNG plots of bench-results/latest.json: `python tests/bench/plots.py bench-results/latest.json`.

Standalone (only matplotlib): `make bench` runs it in its own venv, `.venv/plot`, so that matplotlib
and numpy never enter the project's `.venv` (numpy changes how fpdf2 writes PDFs) nor `make test`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plots(r: dict[str, Any], out_dir: Path) -> None:
    """home-throughput.png (req/s against concurrency) and home-latency.png (p50 against size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for engine, sizes in r["home_timeline"].items():
        for size, row in sizes.items():
            conc = sorted(int(k[1:]) for k, v in row.items() if k.startswith("c") and isinstance(v, dict))
            ax.plot(conc, [row[f"c{c}"]["rps"] for c in conc], marker="o", label=f"{engine}, {int(size):,} posts")
            ax.plot(conc, [row[f"c{c}"]["reference_rps"] for c in conc], linestyle="--", marker="x",
                    label=f"bare aiohttp ({engine} run)")
    ax.set_xlabel("concurrency")
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log scale)")
    ax.set_title("Home timeline throughput against concurrency")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "home-throughput.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for engine, sizes in r["home_timeline"].items():
        xs = sorted(int(s) for s in sizes)
        row_keys = sorted({k for s in sizes.values() for k in s if k.startswith("c") and isinstance(s[k], dict)})
        for key in row_keys:
            ax.plot(xs, [sizes[str(x)][key]["p50_ms"] for x in xs], marker="o", label=f"{engine} p50, concurrency {key[1:]}")
    ax.set_xscale("log")
    ax.set_xlabel("posts in the database")
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title("Home timeline latency against database size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "home-latency.png", dpi=100)
    plt.close(fig)


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results/latest.json")
    plots(json.loads(source.read_text()), source.parent)
    print(f"plots written to {source.parent}/home-throughput.png and home-latency.png")


if __name__ == "__main__":
    main()
