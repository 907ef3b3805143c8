"""Derive the small NAB fixture used by tests/test_evaluate_nab.py (run once; the outputs are committed).

    .venv/bin/python tests/data/make_nab_fixture.py [--realdata ../shared/realdata]

From the Numenta Anomaly Benchmark (numenta/NAB @ ea702d75, MIT licence): the series
realTraffic/speed_7578 (1,127 values, 5-minute steps with gaps) and its four labelled anomaly windows
from labels/combined_windows.json. Written unchanged apart from the format: `nab_speed_7578.csv`
(timestamp, value) and `nab_speed_7578_labels.csv` (vehicle_id = the series name, start, end).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "realTraffic/speed_7578.csv"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--realdata", type=Path, default=HERE.parents[2] / "shared" / "realdata")
    args = p.parse_args()
    nab = args.realdata / "nab"
    with gzip.open(nab / "realTraffic" / "speed_7578.csv.gz", "rt", encoding="utf-8") as fh:
        (HERE / "nab_speed_7578.csv").write_text(fh.read(), encoding="utf-8")
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text(encoding="utf-8"))[KEY]
    with open(HERE / "nab_speed_7578_labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["vehicle_id", "start", "end"])
        for start, end in windows:
            w.writerow(["speed_7578", start[:19], end[:19]])


if __name__ == "__main__":
    main()
