"""How long the parsers take on hostile and large metadata (the timing the tests leave out).

    .venv/bin/python bench/parse_times.py [--json]

The tests check that these inputs are parsed or refused correctly; how fast is a figure of
the machine it runs on, so it is measured here, best of REPEAT runs, against a target:

- every malformed LVM2 metadata text of tests/volume/lvm_texts.py is refused (target 1 s);
- metadata with 3,000 logical volumes parses (target 2 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filerestore.errors import LvmMetadataError
from filerestore.volume.lvm_metadata import parse_config, volume_group
from tests.volume.lvm_texts import SYNTAX_ERRORS, large_metadata

REPEAT = 5


def best(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def refuse(text: str) -> None:
    try:
        parse_config(text)
    except LvmMetadataError:
        return
    raise AssertionError("accepted malformed metadata")


def measure() -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for text, message in SYNTAX_ERRORS:
        seconds = best(lambda text=text: refuse(text))  # type: ignore[misc]
        results.append(
            {"case": f"refuse: {message} ({len(text)} chars)", "seconds": seconds, "target": 1.0}
        )
    text = large_metadata(3000)
    seconds = best(lambda: volume_group(parse_config(text)))
    results.append({"case": "parse 3,000 logical volumes", "seconds": seconds, "target": 2.0})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            verdict = "ok" if r["seconds"] <= r["target"] else "OVER TARGET"  # type: ignore[operator]
            print(f"{r['seconds'] * 1000:9.1f} ms  {verdict:<11} {r['case']}")
    return 0 if all(r["seconds"] <= r["target"] for r in results) else 1  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main())
