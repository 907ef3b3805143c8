"""The report of a real scoring run: the bundled sample fleet scored by `run_score`, events from
`dtg.events`, then `build_report` — the same path `dtg score --report` takes."""

from __future__ import annotations

import base64
import html
import io
import logging
import re
import warnings
from pathlib import Path

import matplotlib.image as mpimg
import pyarrow.dataset as ds
import pytest

from dtg.report import write_report
from dtg.report.data import epoch_ms
from dtg.report.page import local_text
from test_scoring_support import publish_model

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def sample_report(sample_lake, tmp_path_factory):
    import torch

    from dtg.events import detect_events, load_criteria, write_events
    from dtg.lake import Lake
    from dtg.scoring import run_score

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sample_report")
    model = publish_model(root / "models", Lake(sample_lake).read(), name="tiny")
    run_score([SAMPLE_DIR], model, lake_dir=root / "lake", out_dir=root / "scores",
              ledger_path=root / "ledger.sqlite", quarantine_dir=root / "quarantine", device="cpu")
    write_events(detect_events(Lake(root / "lake").read(), load_criteria()), root / "events")

    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("matplotlib").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = write_report(root / "scores", root / "report.html", lake_dir=root / "lake",
                                  events_dir=root / "events", top=3)
    finally:
        logging.getLogger("matplotlib").removeHandler(handler)
    messages += [str(w.message) for w in caught]
    return root, result, (root / "report.html").read_text(encoding="utf-8"), messages


def test_sample_run_report_lists_every_anomaly_in_the_scores(sample_report):
    root, result, text, _ = sample_report
    table = ds.dataset(root / "scores" / "anomalies", format="parquet", partitioning=None).to_table()
    assert table.num_rows > 0
    expected = sorted(zip(table.column("vehicle_id").to_pylist(), map(local_text, epoch_ms(table.column("start")))))
    listed = re.findall(r'<tr><td class="n">(?:<a [^>]*>)?\d+(?:</a>)?</td><td>(.*?)</td><td>(.*?)</td>',
                        text.split("All anomalies")[1])
    assert sorted((html.unescape(v), s) for v, s in listed) == expected
    assert result.anomalies == table.num_rows


def test_sample_run_report_images_all_decode(sample_report):
    _, result, text, _ = sample_report
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == result.images == result.panels + 2  # panels, timeline, histogram (the tiny model has no history)
    for data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100


def test_sample_run_report_draws_hangul_without_missing_glyphs(sample_report):
    _, result, text, messages = sample_report
    assert result.vehicles == 4
    assert "서울70사1234" in text and "events / 100 km" in text
    assert [m for m in messages if re.search(r"glyph|findfont", m, re.IGNORECASE)] == []
