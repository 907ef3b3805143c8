"""`dtg report`: a self-contained HTML report of a scoring run (fleet summary, anomaly panels, model).

- `data` reads scores, the model card and history, lake slices and events;
- `figures` draws each picture from plain arrays to PNG bytes (matplotlib, Agg);
- `page` lays them out as one HTML file with inline CSS and embedded images;
- `build` ties them together: `build_report(scores_dir, out_path, ...) -> Path`.
"""

from dtg.report.build import ReportResult, build_report, write_report

__all__ = ["ReportResult", "build_report", "write_report"]
