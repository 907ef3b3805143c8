"""Feature scalers with scikit-learn's conventions, storable as plain JSON.

`fit` returns self, learned state ends in `_`, `transform` leaves the scaler unchanged, and
`to_dict()` / `scaler_from_dict()` round-trip everything learned: the window set stores it, the model
card copies it, and scoring applies exactly the scaling the model was trained with. `partial_fit`
lets the window set fit on the training rows chunk by chunk, without copying them all at once.
A constant feature (zero range or variance) is shifted, never divided by zero.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from dtg.errors import DtgError

SCALERS: tuple[str, ...] = ("minmax", "minmax-sym", "standard")
_CHUNK_ROWS = 1 << 20


class _Scaler:
    kind: str = ""

    def fit(self, X: np.ndarray) -> "_Scaler":
        """Learn the scaling from the rows of X (rows, F); returns self."""
        self._reset()
        return self.partial_fit(X)

    def fit_chunks(self, chunks: Iterable[np.ndarray]) -> "_Scaler":
        """Learn from row blocks (rows_i, F) as if they were one array; returns self."""
        self._reset()
        for chunk in chunks:
            self.partial_fit(chunk)
        return self

    @property
    def fitted(self) -> bool:
        return hasattr(self, "scale_")

    def _check_fitted(self, X: np.ndarray) -> None:
        if not self.fitted:
            raise DtgError(f"{self.kind} scaler is not fitted")
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DtgError(f"{self.kind} scaler was fitted on {self.n_features_in_} features, got shape {X.shape}")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled copy of X (rows, F) as float32; computed in float64 chunks for precision."""
        X = np.asarray(X)
        self._check_fitted(X)
        out = np.empty(X.shape, dtype=np.float32)
        for lo in range(0, X.shape[0], _CHUNK_ROWS):
            block = X[lo:lo + _CHUNK_ROWS].astype(np.float64)
            out[lo:lo + _CHUNK_ROWS] = self._forward(block)
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo `transform`: float64 values in the original units."""
        X = np.asarray(X, dtype=np.float64)
        self._check_fitted(X)
        return self._backward(X)

    def _reset(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_")]:
            delattr(self, name)

    def partial_fit(self, X: np.ndarray) -> "_Scaler":  # pragma: no cover - abstract
        raise NotImplementedError

    def _forward(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, fitted={self.fitted})"


class MinMaxScaler(_Scaler):
    """Maps each feature's training range [data_min_, data_max_] onto `feature_range`."""

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.feature_range = (float(feature_range[0]), float(feature_range[1]))

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "minmax-sym" if self.feature_range == (-1.0, 1.0) else "minmax"

    def partial_fit(self, X: np.ndarray) -> "MinMaxScaler":
        """Widen the learned range with the rows of X; returns self."""
        X = _rows(X)
        if X.shape[0] == 0:
            return self
        lo, hi = column_extrema(X)
        if hasattr(self, "data_min_"):
            if X.shape[1] != self.n_features_in_:
                raise DtgError(f"scaler was fitted on {self.n_features_in_} features, got {X.shape[1]}")
            lo, hi = np.minimum(lo, self.data_min_), np.maximum(hi, self.data_max_)
        self.n_features_in_ = X.shape[1]
        self.n_samples_seen_ = getattr(self, "n_samples_seen_", 0) + X.shape[0]
        self._set(lo, hi)
        return self

    def fit_extrema(self, lo: np.ndarray, hi: np.ndarray, n_samples: int) -> "MinMaxScaler":
        """Learn from column-wise minima and maxima (k, F) already taken over `n_samples` rows (e.g.
        per block while the rows were written): the same result as `fit` on those rows; returns self."""
        lo, hi = np.asarray(lo), np.asarray(hi)
        self._reset()
        self.n_features_in_ = lo.shape[1]
        self.n_samples_seen_ = int(n_samples)
        self._set(lo.min(axis=0).astype(np.float64), hi.max(axis=0).astype(np.float64))
        return self

    def _set(self, lo: np.ndarray, hi: np.ndarray) -> None:
        a, b = self.feature_range
        self.data_min_, self.data_max_ = lo, hi
        self.data_range_ = hi - lo
        self.scale_ = (b - a) / np.where(self.data_range_ == 0, 1.0, self.data_range_)
        self.min_ = a - lo * self.scale_

    def _forward(self, X: np.ndarray) -> np.ndarray:
        return (X - self.data_min_) * self.scale_ + self.feature_range[0]

    def _backward(self, X: np.ndarray) -> np.ndarray:
        return (X - self.feature_range[0]) / self.scale_ + self.data_min_

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON state: kind, parameters and everything learned."""
        d: dict[str, Any] = {"kind": self.kind, "feature_range": list(self.feature_range)}
        if self.fitted:
            d.update(data_min_=self.data_min_.tolist(), data_max_=self.data_max_.tolist(),
                     n_features_in_=int(self.n_features_in_), n_samples_seen_=int(self.n_samples_seen_))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MinMaxScaler":
        s = cls(tuple(d.get("feature_range", (0.0, 1.0))))  # type: ignore[arg-type]
        if "data_min_" in d:
            s.n_features_in_ = int(d["n_features_in_"])
            s.n_samples_seen_ = int(d.get("n_samples_seen_", 0))
            s._set(np.asarray(d["data_min_"], dtype=np.float64), np.asarray(d["data_max_"], dtype=np.float64))
        return s


class StandardScaler(_Scaler):
    """Centres each feature on its training mean and divides by its standard deviation."""

    kind = "standard"

    def __init__(self) -> None:
        pass

    def partial_fit(self, X: np.ndarray) -> "StandardScaler":
        """Merge the rows of X into the running mean and variance (Chan et al.); returns self."""
        X = _rows(X)
        m = X.shape[0]
        if m == 0:
            return self
        mean_b = _fold(X, np.add) / m
        m2_b = np.zeros_like(mean_b)
        for lo in range(0, m, _CHUNK_ROWS):
            d = X[lo:lo + _CHUNK_ROWS] - mean_b
            m2_b += _fold(d * d, np.add)
        if hasattr(self, "mean_"):
            if X.shape[1] != self.n_features_in_:
                raise DtgError(f"scaler was fitted on {self.n_features_in_} features, got {X.shape[1]}")
            n = self.n_samples_seen_
            delta = mean_b - self.mean_
            total = n + m
            mean = self.mean_ + delta * (m / total)
            m2 = self.var_ * n + m2_b + delta ** 2 * (n * m / total)
        else:
            total, mean, m2 = m, mean_b, m2_b
        self.n_features_in_ = X.shape[1]
        self._set(mean, m2 / total, total)
        return self

    def _set(self, mean: np.ndarray, var: np.ndarray, n: int) -> None:
        self.mean_, self.var_, self.n_samples_seen_ = mean, var, int(n)
        std = np.sqrt(var)
        self.scale_ = np.where(std == 0, 1.0, std)

    def _forward(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def _backward(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.mean_

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON state: kind and everything learned."""
        d: dict[str, Any] = {"kind": self.kind}
        if self.fitted:
            d.update(mean_=self.mean_.tolist(), var_=self.var_.tolist(), n_features_in_=int(self.n_features_in_),
                     n_samples_seen_=int(self.n_samples_seen_))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StandardScaler":
        s = cls()
        if "mean_" in d:
            s.n_features_in_ = int(d["n_features_in_"])
            s._set(np.asarray(d["mean_"], dtype=np.float64), np.asarray(d["var_"], dtype=np.float64),
                   int(d["n_samples_seen_"]))
        return s


Scaler = MinMaxScaler | StandardScaler


def make_scaler(name: str) -> Scaler:
    """A fresh, unfitted scaler for a name in SCALERS."""
    if name == "minmax":
        return MinMaxScaler((0.0, 1.0))
    if name == "minmax-sym":
        return MinMaxScaler((-1.0, 1.0))
    if name == "standard":
        return StandardScaler()
    raise DtgError(f"unknown scaler '{name}' (valid: {', '.join(SCALERS)})", field="scaler")


def scaler_from_dict(d: dict[str, Any]) -> Scaler:
    """Rebuild a scaler (fitted or not) from `to_dict()` output."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind in ("minmax", "minmax-sym"):
        return MinMaxScaler.from_dict(d)
    if kind == "standard":
        return StandardScaler.from_dict(d)
    raise DtgError(f"unknown scaler kind {kind!r} (valid: {', '.join(SCALERS)})", field="scaler")


def column_extrema(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise (min, max) of X (rows, F), float64, with long vectorised inner loops (see `_fold`)."""
    return _fold(X, np.minimum), _fold(X, np.maximum)


def _fold(X: np.ndarray, ufunc: np.ufunc, lines: int = 256) -> np.ndarray:
    """Column-wise `ufunc` reduction of X (rows, F) in float64.

    Reducing a narrow (rows, F) array along axis 0 runs an inner loop of length F; folding `lines`
    rows into one line of lines*F values gives numpy long, vectorised inner loops (about 3x faster).
    """
    X = np.ascontiguousarray(X)
    n, F = X.shape
    m = (n // lines) * lines
    dtype = np.float64 if ufunc is np.add else None
    acc = None
    if m:
        acc = ufunc.reduce(ufunc.reduce(X[:m].reshape(m // lines, lines * F), axis=0, dtype=dtype).reshape(lines, F),
                           axis=0)
    if m < n:
        tail = ufunc.reduce(X[m:], axis=0, dtype=dtype)
        acc = tail if acc is None else ufunc(acc, tail)
    return np.asarray(acc, dtype=np.float64)


def _rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DtgError(f"scaler expects a (rows, features) array, got shape {X.shape}")
    return X
