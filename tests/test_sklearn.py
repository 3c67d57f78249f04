"""scikit-learn's own estimator checks, and the adapter agreeing with scikit-learn's models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression as SkLinearRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from linearnet.sklearn import LinearRegression, SoftmaxRegression, expected_failed_checks


@parametrize_with_checks([LinearRegression(), LinearRegression(solver="sgd"), SoftmaxRegression()],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_core_package_does_not_import_sklearn():
    import subprocess
    import sys

    code = "import linearnet, linearnet.training, linearnet.cli.main, sys; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_closed_form_matches_sklearn_coefficients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20)) * rng.uniform(0.5, 20, 20)
    y = X @ rng.normal(size=20) + 1.5 + rng.normal(0, 0.1, 2000)
    ours, ref = LinearRegression().fit(X, y), SkLinearRegression().fit(X, y)
    assert np.allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    assert abs(ours.intercept_ - ref.intercept_) < 1e-8


def test_sgd_regression_approaches_the_exact_solution():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 3)) * [1, 100, 0.01]
    y = X @ np.array([2.0, -0.03, 300.0]) + 4.2 + rng.normal(0, 0.01, 1000)
    est = LinearRegression(solver="sgd", random_state=0).fit(X, y)
    exact = LinearRegression().fit(X, y)
    assert est.score(X, y) > 0.999
    assert np.allclose(est.coef_, exact.coef_, rtol=0.02)


def test_classifier_in_pipeline_grid_search_and_string_labels():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    labels = np.array(["ant", "bee", "cow"])[y]
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression(max_iter=20, random_state=0))
    scores = cross_val_score(pipe, X, labels, cv=3)
    assert scores.mean() > 0.6
    grid = GridSearchCV(SoftmaxRegression(max_iter=10, random_state=0), {"lr": [0.01, 0.1]}, cv=3).fit(X, labels)
    assert grid.best_estimator_.classes_.tolist() == ["ant", "bee", "cow"]
    est = SoftmaxRegression(random_state=0).fit(X, labels)
    proba = est.predict_proba(X)
    assert np.allclose(proba.sum(1), 1) and set(est.predict(X)) <= set(labels)
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict(X), est.predict(X))


def test_random_state_makes_fits_reproducible():
    X, y = make_classification(n_samples=200, n_features=5, random_state=3)
    a = SoftmaxRegression(random_state=7, max_iter=5).fit(X, y)
    b = SoftmaxRegression(random_state=7, max_iter=5).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize("est", [LinearRegression(), SoftmaxRegression()])
def test_expected_failures_list_is_short(est):
    assert len(expected_failed_checks(est)) <= 2


# ----- partial_fit ------------------------------------------------------------------------------------
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) * [1, 5, 50, 0.1] + np.eye(3, 4)[y] * [2, 10, 100, 0.2] + [0, 3, -400, 7]
    return X, np.array(["a", "b", "c"])[y]


def test_softmax_partial_fit_over_chunks_learns_like_fit():
    X, y = _blobs(3000, 0)
    Xv, yv = _blobs(1000, 1)
    est = SoftmaxRegression(random_state=0, batch_size=32)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        SoftmaxRegression().partial_fit(X[:10], y[:10])
    for epoch in range(3):
        for part in np.array_split(np.arange(3000), 10):
            est.partial_fit(X[part], y[part], classes=["a", "b", "c"] if epoch == 0 else None)
    full = SoftmaxRegression(random_state=0, batch_size=32, max_iter=3).fit(X, y)
    assert list(est.classes_) == ["a", "b", "c"]
    assert est.score(Xv, yv) > 0.8 and abs(est.score(Xv, yv) - full.score(Xv, yv)) < 0.02
    # the classes come from classes=, not the batch: a first batch with one label still trains
    one = SoftmaxRegression(random_state=0).partial_fit(X[y == "a"][:50], y[y == "a"][:50], classes=["a", "b", "c"])
    assert one.coef_.shape == (3, 4)
    with pytest.raises(ValueError, match="not in classes"):
        one.partial_fit(X[:5], np.array(["a", "b", "z", "a", "b"]))
    with pytest.raises(ValueError, match="features"):
        one.partial_fit(X[:5, :3], y[:5])


def test_linear_regression_partial_fit_reaches_the_least_squares_answer():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4000, 3)) * [1, 100, 0.01] + [0, 1e4, 5]
    y = X @ [2.0, -0.03, 300.0] + 7 + rng.normal(0, 0.1, 4000)
    exact = LinearRegression().fit(X, y)
    est = LinearRegression(solver="sgd", random_state=0, lr=0.02, batch_size=16)
    for _ in range(4):
        for part in np.array_split(np.arange(4000), 8):
            est.partial_fit(X[part], y[part])
    assert np.allclose(est.coef_, exact.coef_, rtol=0.01)
    rmse = np.sqrt(((est.predict(X) - y) ** 2).mean())  # the offsets (1e4, 5) land in the intercept
    assert rmse < 1.05 * np.sqrt(((exact.predict(X) - y) ** 2).mean())
    assert not hasattr(LinearRegression(), "partial_fit")  # the closed form solves once, it does not stream
