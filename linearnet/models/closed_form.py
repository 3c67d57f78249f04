"""The analytic solution of linear least squares, fast and stable together.

The data are reduced, chunk by chunk, to centred sufficient statistics (count, means, and the
centred cross-product matrices), merged with Chan et al.'s pairwise update. This is one pass,
memory O(d^2), and the same code serves in-memory tensors, files streamed from disk and ranks of
a distributed job. The bias is folded in by centring. The normal equations are then solved by
Cholesky in float64 when they are well conditioned; otherwise (in memory) a QR-based least-squares
solve on the centred data takes over, and a rank-deficient design gets a warning and the
minimum-norm solution. No matrix is ever inverted explicitly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch

# Above this condition number of the (column-scaled) normal matrix, Cholesky on X^T X would lose
# more than ~1e-10 relative accuracy, so the solver switches to QR least squares.
NORMAL_EQUATIONS_MAX_COND = 1e6
DEFAULT_CHUNK_ROWS = 65536


class SingularDesignWarning(UserWarning):
    """``X^T X`` is singular: the returned solution is the minimum-norm one."""


@dataclass
class Moments:
    """Centred sufficient statistics of ``(X, y)``: n, means and centred cross-products (float64)."""

    n: int
    mean_x: torch.Tensor  # (d,)
    mean_y: torch.Tensor  # (k,)
    cxx: torch.Tensor     # (d, d) sum of (x - mean_x)(x - mean_x)^T
    cxy: torch.Tensor     # (d, k) sum of (x - mean_x)(y - mean_y)^T

    @classmethod
    def of(cls, X: torch.Tensor, y: torch.Tensor) -> Moments:
        """Statistics of one chunk, computed after centring the chunk (no cancellation)."""
        X = X.to(torch.float64)
        y = y.to(torch.float64).reshape(len(X), -1)
        mx, my = X.mean(0), y.mean(0)
        Xc, yc = X - mx, y - my
        return cls(len(X), mx, my, Xc.t() @ Xc, Xc.t() @ yc)

    def merge(self, other: Moments) -> Moments:
        """Statistics of the union of two disjoint chunks."""
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        n = self.n + other.n
        dx, dy = other.mean_x - self.mean_x, other.mean_y - self.mean_y
        f = self.n * other.n / n
        return Moments(n, self.mean_x + dx * (other.n / n), self.mean_y + dy * (other.n / n),
                       self.cxx + other.cxx + f * torch.outer(dx, dx),
                       self.cxy + other.cxy + f * torch.outer(dx, dy))

    def to_tensor(self) -> torch.Tensor:
        """Flatten into one float64 vector (for an all-gather across ranks)."""
        return torch.cat([torch.tensor([float(self.n)], dtype=torch.float64), self.mean_x, self.mean_y,
                          self.cxx.reshape(-1), self.cxy.reshape(-1)])

    @classmethod
    def from_tensor(cls, t: torch.Tensor, d: int, k: int) -> Moments:
        n = int(t[0].item())
        o = 1
        mx = t[o:o + d]
        o += d
        my = t[o:o + k]
        o += k
        cxx = t[o:o + d * d].reshape(d, d)
        o += d * d
        cxy = t[o:o + d * k].reshape(d, k)
        return cls(n, mx, my, cxx, cxy)


def accumulate(chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Moments | None:
    """Merge the statistics of a stream of ``(X, y)`` chunks; None when the stream is empty."""
    total = None
    for X, y in chunks:
        if len(X) == 0:
            continue
        m = Moments.of(X, y)
        total = m if total is None else total.merge(m)
    return total


def _chunks(X: torch.Tensor, y: torch.Tensor, rows: int):
    for i in range(0, len(X), rows):
        yield X[i:i + rows], y[i:i + rows]


@dataclass
class LeastSquaresSolution:
    """Weights (k, d) and bias (k,), in the canonical layout, plus how they were obtained."""

    weight: torch.Tensor
    bias: torch.Tensor
    method: str          # "cholesky", "qr" or "min-norm"
    condition: float     # condition number of the column-scaled centred normal matrix


def condition_number(m: Moments) -> float:
    """Condition number of the column-scaled centred normal matrix (inf when singular)."""
    A = _scaled(m)[0]
    eig = torch.linalg.eigvalsh(A)
    top = float(eig[-1]) if len(eig) else 1.0
    return float("inf") if float(eig[0]) <= top * 1e-15 else top / float(eig[0])


def _scaled(m: Moments) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scale = m.cxx.diagonal().clamp_min(0).sqrt()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return m.cxx / torch.outer(scale, scale), m.cxy / scale[:, None], scale


def solve_moments(m: Moments, allow_fallback: bool = False) -> LeastSquaresSolution | None:
    """Solve the normal equations held in ``m``.

    Returns None when they are too ill-conditioned and ``allow_fallback`` is True (the caller then
    has the data for a QR solve). Otherwise an ill-conditioned or singular system is solved through
    the eigen-decomposition of the scaled normal matrix, with a warning.
    """
    d = m.cxx.shape[0]
    A, B, scale = _scaled(m)
    cond = condition_number(m)
    if cond <= NORMAL_EQUATIONS_MAX_COND:
        L, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            w = torch.cholesky_solve(B, L) / scale[:, None]
            return _finish(m, w, "cholesky", cond)
    if allow_fallback:
        return None
    vals, vecs = torch.linalg.eigh(A)
    keep = vals > vals[-1] * max(d, 1) * torch.finfo(torch.float64).eps
    if not bool(keep.all()):
        warnings.warn("X^T X is singular (some features are linear combinations of others); returning the "
                      "minimum-norm least-squares solution.", SingularDesignWarning, stacklevel=3)
    singular = not bool(keep.all())
    if singular:  # minimum norm in the original units, not the scaled ones (as _qr_solve)
        A, B, scale = m.cxx, m.cxy, torch.ones_like(scale)
        vals, vecs = torch.linalg.eigh(A)
        keep = vals > vals[-1] * max(d, 1) * torch.finfo(torch.float64).eps
    inv_vals = torch.where(keep, 1.0 / vals.clamp_min(1e-300), torch.zeros_like(vals))
    w = (vecs @ (inv_vals[:, None] * (vecs.t() @ B))) / scale[:, None]
    return _finish(m, w, "min-norm" if singular else "eigh", cond)


def _finish(m: Moments, w: torch.Tensor, method: str, cond: float) -> LeastSquaresSolution:
    b = m.mean_y - m.mean_x @ w
    return LeastSquaresSolution(w.t().contiguous(), b, method, cond)


def least_squares(X: torch.Tensor, y: torch.Tensor, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  sample_weight: torch.Tensor | None = None) -> LeastSquaresSolution:
    """Minimise ``||X w + b - y||^2`` (or ``sum_i s_i (x_i w + b - y_i)^2``) exactly, in float64.

    Parameters
    ----------
    X : Tensor, shape (n, d)
    y : Tensor, shape (n,) or (n, k)
    chunk_rows : rows per chunk when forming the normal equations (bounds the temporary memory).
    sample_weight : optional non-negative weights (n,); a weight of 2 counts a row twice.

    Returns
    -------
    LeastSquaresSolution with ``weight`` (k, d), ``bias`` (k,), float64.
    """
    if len(X) == 0:
        raise ValueError("least squares needs at least one row")
    y2 = y.reshape(len(X), -1)
    if sample_weight is not None:
        return _weighted(X, y2, sample_weight)
    m = accumulate(_chunks(X, y2, chunk_rows))
    sol = solve_moments(m, allow_fallback=True)
    if sol is not None:
        return sol
    return _qr_solve(X.to(torch.float64) - m.mean_x, y2.to(torch.float64) - m.mean_y, m)


def _weighted(X: torch.Tensor, y: torch.Tensor, sample_weight: torch.Tensor) -> LeastSquaresSolution:
    """Weighted least squares: centre on the weighted means, scale rows by sqrt(weight), solve."""
    s = sample_weight.to(torch.float64).reshape(-1)
    total = float(s.sum())
    if not total > 0:
        raise ValueError("sample_weight must have a positive sum")
    X64, y64 = X.to(torch.float64), y.to(torch.float64)
    mx, my = (s @ X64) / total, (s @ y64) / total
    root = s.sqrt()[:, None]
    Xc, yc = (X64 - mx) * root, (y64 - my) * root
    m = Moments(len(X), mx, my, Xc.t() @ Xc, Xc.t() @ yc)
    sol = solve_moments(m, allow_fallback=True)
    return sol if sol is not None else _qr_solve(Xc, yc, m)


def solve_triangular_factor(R: torch.Tensor, scale: torch.Tensor, m: Moments) -> LeastSquaresSolution:
    """Solve from the R factor of ``[(X - mean_x) / scale, y - mean_y]`` (a TSQR of streamed chunks).

    ``R`` is (d + k, d + k) upper triangular; the least-squares problem in its top-left block is the
    same as on the data itself, so this is as accurate as :func:`_qr_solve` on the rows in memory.
    """
    d = m.cxx.shape[0]
    R11, R12 = R[:d, :d], R[:d, d:]
    res = torch.linalg.lstsq(R11, R12, rcond=d * torch.finfo(torch.float64).eps, driver="gelsy")
    rank = int(res.rank) if res.rank is not None and res.rank.numel() else d
    w, method = res.solution / scale[:, None], "tsqr"
    if rank < d:
        warnings.warn(f"X^T X is singular (rank {rank} of {d}); returning the minimum-norm least-squares "
                      "solution.", SingularDesignWarning, stacklevel=3)
        w = torch.linalg.lstsq(R11 * scale, R12, driver="gelsd").solution
        method = "min-norm"
    return _finish(m, w, method, condition_number(m))


def _qr_solve(Xc: torch.Tensor, yc: torch.Tensor, m: Moments) -> LeastSquaresSolution:
    """Least squares on the centred (float64, owned) data, column-scaled, by pivoted QR (LAPACK gelsy)."""
    scale = Xc.norm(dim=0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    Xc /= scale
    # Columns now have unit norm, so the rank cut-off is relative to the d columns, not to the n rows
    # (LAPACK's default eps * max(n, d) would discard real directions of a tall, ill-conditioned design).
    res = torch.linalg.lstsq(Xc, yc, rcond=Xc.shape[1] * torch.finfo(torch.float64).eps, driver="gelsy")
    rank = int(res.rank) if res.rank is not None and res.rank.numel() else Xc.shape[1]
    w = res.solution / scale[:, None]
    method = "qr"
    if rank < Xc.shape[1]:
        warnings.warn(f"X^T X is singular (rank {rank} of {Xc.shape[1]}); returning the minimum-norm "
                      "least-squares solution.", SingularDesignWarning, stacklevel=3)
        # Minimum norm in the original units, not the scaled ones: SVD on the unscaled centred data.
        w = torch.linalg.lstsq(Xc * scale, yc, driver="gelsd").solution
        method = "min-norm"
    return _finish(m, w, method, condition_number(m))
