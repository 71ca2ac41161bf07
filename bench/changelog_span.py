"""Same-run A/B of reading a change log's span (what every search of the in-process indexes does first):
``max(id), min(id)`` in one SELECT (a scan of the log) against two scalar subqueries (the primary key).

``python -m bench.changelog_span <store built by bench.speed.fill>`` writes ``bench/results/speed_changelog_span.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from memcubed.backends.sqlite.driver import sqlite_module


def run(path: Path, rounds: int = 100) -> dict[str, Any]:
    """Alternate the two forms ``rounds`` times on each log of the store at ``path``."""
    conn = sqlite_module().connect(f"file:{path}?mode=ro", uri=True)
    out: dict[str, Any] = {"store": str(path), "load_average_before": [round(x, 1) for x in os.getloadavg()]}
    for log in ("vec_log", "fts_log"):
        forms = {"old": f"SELECT coalesce(max(id), 0), coalesce(min(id), 0) FROM {log}",
                 "new": f"SELECT coalesce((SELECT max(id) FROM {log}), 0), coalesce((SELECT min(id) FROM {log}), 0)"}
        times: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(rounds):
            for arm in ("old", "new") if i % 2 == 0 else ("new", "old"):
                t0 = time.perf_counter()
                conn.execute(forms[arm]).fetchone()
                times[arm].append((time.perf_counter() - t0) * 1000)
        assert conn.execute(forms["old"]).fetchone() == conn.execute(forms["new"]).fetchone()
        p50 = {arm: statistics.median(values) for arm, values in times.items()}
        out[log] = {"entries": conn.execute(f"SELECT count(*) FROM {log}").fetchone()[0],
                    **{f"{arm}_ms_p50": round(v, 4) for arm, v in p50.items()},
                    "old_over_new_p50": round(p50["old"] / p50["new"], 1)}
    out["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    out["per_hybrid_search_saved_ms_p50"] = round(sum(out[log]["old_ms_p50"] - out[log]["new_ms_p50"]
                                                      for log in ("vec_log", "fts_log")), 2)
    return out


if __name__ == "__main__":
    result = run(Path(sys.argv[1]))
    Path("bench/results/speed_changelog_span.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
