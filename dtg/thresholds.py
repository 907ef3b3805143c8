"""Thresholds that turn anomaly scores into flags, in scikit-learn style: `fit(scores)` learns
`threshold_` (and, for the dynamic one, the flags themselves) and returns self.

- `FixedThreshold(value)`: a given value (a model card's default, or `--threshold VALUE`).
- `PercentileThreshold(q)`: the q-th percentile of the fitted scores (e.g. of validation errors).
- `DynamicThreshold()`: telemanom's non-parametric dynamic threshold (Hundman et al., KDD 2018),
  re-implemented from the paper and the reference code's behaviour, with the original's faults
  fixed: the same error buffer in the search and the comparison, no channel-specific special case,
  every point checked exactly once (the original's last block skipped up to 69 points).

All thresholds flag a point when its score is strictly greater than the threshold (`>`), except the
dynamic one, which follows telemanom (`>=` epsilon, then buffer and pruning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dtg.errors import DtgError
from dtg.intervals import runs


class FixedThreshold:
    """Flags scores above a given value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def fit(self, scores: np.ndarray | None = None) -> "FixedThreshold":
        v = float(self.value)
        if not np.isfinite(v):
            raise DtgError(f"threshold must be a finite number, got {self.value!r}", field="threshold")
        self.threshold_ = v
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores, dtype=np.float64) > self.threshold_

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "fixed", "value": self.threshold_}


class PercentileThreshold:
    """Flags scores above the q-th percentile (0 < q < 100) of the scores it was fitted on."""

    def __init__(self, q: float = 99.0) -> None:
        self.q = q

    def fit(self, scores: np.ndarray) -> "PercentileThreshold":
        if not 0.0 < float(self.q) < 100.0:
            raise DtgError(f"percentile must be between 0 and 100, got {self.q!r}", field="threshold")
        s = np.asarray(scores, dtype=np.float64)
        s = s[np.isfinite(s)]
        if s.size == 0:
            raise DtgError("cannot fit a percentile threshold on no finite scores", field="threshold")
        self.threshold_ = float(np.percentile(s, self.q))
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores, dtype=np.float64) > self.threshold_

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "percentile", "q": float(self.q), "value": self.threshold_}


@dataclass
class _Direction:
    """Search result of one direction (normal or inverted errors) in one block."""

    epsilon: float
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    non_anom_max: float = -np.inf


class DynamicThreshold:
    """telemanom's non-parametric dynamic threshold over a series of errors.

    Parameters (telemanom's defaults): `smoothing_span` of the EWMA (105 = 5% of 70 × 30), `block`
    errors per threshold search (2,100) moving by `step` (70), `z_min`..`z_max` by `z_step`
    (2.5..11.5 by 0.5), `buffer` points flagged either side of an exceedance (100), `max_sequences`
    (5), pruning `p` (0.13) and `min_fraction` (0.05 of the signal's p95 − p5 range).

    `fit(errors, signal=None)` learns per point: `smoothed_` errors, `threshold_` (epsilon of the block
    that judged the point), `labels_` (bool flags); and `sequences_` (start, end inclusive) with
    `severity_` = max |e_s − ε| / (μ + σ). Without `signal` (a multivariate window error has no single
    raw signal in the same units) the two signal-scale guards are skipped.

    Warm-up: the EWMA starts from the mean of the first 2·span errors instead of from the first error
    (an average of a few errors swings by chance and was flagged); telemanom instead overwrote the
    first 250 smoothed values with a mean, hiding early anomalies, and special-cased a channel whose
    anomaly was early. Here an early spike still raises the smoothed error as it would anywhere.
    """

    def __init__(
        self,
        smoothing_span: float = 105.0,
        block: int = 2100,
        step: int = 70,
        z_min: float = 2.5,
        z_max: float = 11.5,
        z_step: float = 0.5,
        buffer: int = 100,
        max_sequences: int = 5,
        p: float = 0.13,
        min_fraction: float = 0.05,
    ) -> None:
        self.smoothing_span = smoothing_span
        self.block = block
        self.step = step
        self.z_min = z_min
        self.z_max = z_max
        self.z_step = z_step
        self.buffer = buffer
        self.max_sequences = max_sequences
        self.p = p
        self.min_fraction = min_fraction

    # -- public API -------------------------------------------------------------------------------

    def fit(self, errors: np.ndarray, signal: np.ndarray | None = None) -> "DynamicThreshold":
        e = np.asarray(errors, dtype=np.float64)
        if e.ndim != 1:
            raise ValueError("errors must be one-dimensional")
        if not np.all(np.isfinite(e)):
            raise DtgError("dynamic threshold needs finite errors", field="threshold")
        if signal is not None and len(signal) != len(e):
            raise ValueError("signal must be as long as errors")
        n = len(e)
        self.smoothed_ = self._smooth(e)
        self.threshold_ = np.full(n, np.inf)
        flagged = np.zeros(n, dtype=bool)
        severity_pts = np.zeros(n)
        prev_end = 0
        for end in self._block_ends(n):
            start = max(0, end - self.block)
            lo = prev_end  # first point this block may flag (earlier ones were judged before)
            self._judge_block(start, end, lo, signal, flagged, severity_pts)
            prev_end = end
        self.labels_ = flagged
        s, t = runs(flagged)
        self.sequences_ = np.stack([s, t], axis=1) if len(s) else np.zeros((0, 2), dtype=np.int64)
        self.severity_ = np.array([severity_pts[a:b + 1].max() for a, b in zip(s, t)], dtype=np.float64)
        return self

    def fit_predict(self, errors: np.ndarray, signal: np.ndarray | None = None) -> np.ndarray:
        return self.fit(errors, signal).labels_

    def to_dict(self) -> dict[str, Any]:
        keys = ("smoothing_span", "block", "step", "z_min", "z_max", "z_step", "buffer", "max_sequences", "p",
                "min_fraction")
        return {"kind": "dynamic", **{k: getattr(self, k) for k in keys}}

    # -- steps ------------------------------------------------------------------------------------

    def _smooth(self, e: np.ndarray) -> np.ndarray:
        """EWMA y_t = w·y_{t-1} + (1 − w)·e_t, w = 1 − 2/(span + 1), started at the mean of the first
        2·span errors, so the first points have the same variance as the rest."""
        if len(e) == 0:
            return e.copy()
        from scipy.signal import lfilter

        w = 1.0 - 2.0 / (float(self.smoothing_span) + 1.0)
        start = e[: max(1, int(2 * self.smoothing_span))].mean()
        y, _ = lfilter([1.0 - w], [1.0, -w], e, zi=[w * start])
        return y

    def _block_ends(self, n: int) -> list[int]:
        if n == 0:
            return []
        ends = [min(self.block, n)]
        while ends[-1] < n:
            ends.append(min(ends[-1] + self.step, n))
        return ends

    def _zs(self) -> np.ndarray:
        k = int(round((self.z_max - self.z_min) / self.z_step))
        return self.z_min + self.z_step * np.arange(k + 1)

    def _widen(self, idx: np.ndarray, n: int) -> np.ndarray:
        """Indices plus `buffer` neighbours on each side, clipped to [0, n), unique and sorted."""
        if len(idx) == 0:
            return idx
        offsets = np.arange(-self.buffer, self.buffer + 1)
        wide = (idx[:, None] + offsets[None, :]).ravel()
        return np.unique(wide[(wide >= 0) & (wide < n)])

    def _search(self, e_s: np.ndarray, mean: float, sd: float) -> float:
        """Best epsilon = mean + z·sd by (Δμ/μ + Δσ/σ) / (|E_seq|² + |e_a|), under the guardrails."""
        best_score, best_eps = -np.inf, mean + (self.z_max + self.z_step) * sd
        n = len(e_s)
        for z in self._zs():
            eps = mean + z * sd
            above = np.flatnonzero(e_s >= eps)
            if len(above) == 0:
                continue
            e_a = self._widen(above, n)
            n_seq = len(runs(np.isin(np.arange(n), e_a))[0])
            kept = e_s[e_s < eps]
            d_mean = (mean - kept.mean()) / mean
            d_sd = (sd - kept.std()) / sd
            score = (d_mean + d_sd) / (n_seq ** 2 + len(e_a))
            if score >= best_score and n_seq <= self.max_sequences and len(e_a) < 0.5 * n:
                best_score, best_eps = score, eps
        return best_eps

    def _judge_block(self, start: int, end: int, lo: int, signal: np.ndarray | None,
                     flagged: np.ndarray, severity_pts: np.ndarray) -> None:
        e_s = self.smoothed_[start:end]
        n = len(e_s)
        mean, sd = float(e_s.mean()), float(e_s.std())
        if n == 0 or sd <= 0.0 or mean <= 0.0:
            self.threshold_[lo:end] = np.inf
            return
        inv = 2.0 * mean - e_s
        guard = -np.inf
        if signal is not None:
            y = np.asarray(signal[start:end], dtype=np.float64)
            p95, p5 = np.percentile(y, [95, 5])
            guard = self.min_fraction * (p95 - p5)
            if not (sd > self.min_fraction * y.std() or e_s.max() > guard):
                self.threshold_[lo:end] = np.inf  # errors are tiny next to the signal: nothing to flag
                return
        eps = self._search(e_s, mean, sd)
        eps_inv = self._search(inv, mean, sd)
        self.threshold_[lo:end] = eps
        local_lo = lo - start
        normal = self._compare(e_s, eps, guard, local_lo, start, flagged)
        inverse = self._compare(inv, eps_inv, guard, local_lo, start, flagged)
        keep = np.union1d(self._prune(e_s, normal), self._prune(inv, inverse)).astype(np.int64)
        if len(keep) == 0:
            return
        flagged[keep + start] = True
        sev = np.maximum(np.abs(e_s - eps), np.abs(inv - eps_inv)) / (mean + sd)
        severity_pts[keep + start] = sev[keep]

    def _compare(self, e: np.ndarray, eps: float, guard: float, local_lo: int, start: int,
                 flagged: np.ndarray) -> _Direction:
        n = len(e)
        above = np.flatnonzero((e >= eps) & (e > guard))
        idx = self._widen(above, n)
        idx = idx[idx >= local_lo]
        mask = np.ones(n, dtype=bool)
        mask[idx] = False
        mask &= ~flagged[start:start + n]
        non_anom_max = float(e[mask].max()) if mask.any() else -np.inf
        return _Direction(epsilon=eps, flags=idx, non_anom_max=non_anom_max)

    def _prune(self, e: np.ndarray, d: _Direction) -> np.ndarray:
        """Keep the sequences down to the last step where the sorted peaks fall by at least `p`."""
        if len(d.flags) == 0:
            return d.flags
        mask = np.zeros(len(e), dtype=bool)
        mask[d.flags] = True
        s, t = runs(mask)
        peaks = np.array([e[a:b + 1].max() for a, b in zip(s, t)])
        order = np.argsort(-peaks, kind="stable")
        chain = np.append(peaks[order], d.non_anom_max)
        with np.errstate(divide="ignore", invalid="ignore"):
            drops = (chain[:-1] - chain[1:]) / chain[:-1]
        big = np.flatnonzero(drops >= self.p)
        if len(big) == 0:
            return np.zeros(0, dtype=np.int64)
        keep_seq = order[: big[-1] + 1]
        return np.concatenate([np.arange(s[k], t[k] + 1) for k in sorted(keep_seq)])


def from_spec(spec: str | float | None, card_threshold: float | None) -> FixedThreshold | DynamicThreshold:
    """`--threshold default|VALUE|dynamic` → a threshold object (unfitted for `dynamic`)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "default")):
        if card_threshold is None:
            raise DtgError("the model card has no default threshold; pass --threshold VALUE or dynamic",
                           field="threshold")
        return FixedThreshold(card_threshold).fit()
    if isinstance(spec, str) and spec.strip().lower() == "dynamic":
        return DynamicThreshold()
    try:
        value = float(spec)
    except (TypeError, ValueError):
        raise DtgError(f"invalid threshold {spec!r} (valid: default, dynamic or a number)",
                       field="threshold") from None
    return FixedThreshold(value).fit()
