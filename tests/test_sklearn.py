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
