"""Frechet distance, KID and IS against hand-checkable values."""
import math
import warnings

import numpy as np
import pytest
import scipy.linalg

from i2i.metrics import (feature_statistics, fid_from_features, frechet_distance, inception_score, kid,
                         mmd2_unbiased, polynomial_kernel)
from i2i.metrics.fid import softmax64, trace_sqrt_product_symmetric


def test_fid_mean_shift_is_squared_norm():
    mu = np.array([1.0, 2.0, 0.0, 0.0, -2.0])
    assert frechet_distance(np.zeros(5), np.eye(5), mu, np.eye(5)) == pytest.approx(9.0, abs=1e-10)


def test_fid_scaled_identity():
    d, a, b = 5, 4.0, 1.0
    value = frechet_distance(np.zeros(d), a * np.eye(d), np.zeros(d), b * np.eye(d))
    assert value == pytest.approx(d * (math.sqrt(a) - math.sqrt(b)) ** 2, abs=1e-10)


def test_fid_diagonal_and_one_dimensional():
    s, t = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s) - np.sqrt(t)) ** 2)
    assert frechet_distance(mu1, np.diag(s), mu2, np.diag(t)) == pytest.approx(expected, abs=1e-10)
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(5.0, abs=1e-12)


@pytest.mark.smoke
def test_fid_non_commuting_2x2_closed_form():
    s1, s2 = np.diag([1.0, 4.0]), np.array([[2.0, 1.0], [1.0, 2.0]])
    m = s1 @ s2
    expected = np.trace(s1) + np.trace(s2) - 2 * math.sqrt(np.trace(m) + 2 * math.sqrt(np.linalg.det(m)))
    value = frechet_distance(np.zeros(2), s1, np.zeros(2), s2)
    assert value == pytest.approx(expected, abs=1e-12)
    assert value == pytest.approx(0.7712204476543398, abs=1e-12)
    assert frechet_distance(np.zeros(2), s2, np.zeros(2), np.eye(2)) == pytest.approx(4 - 2 * math.sqrt(3), abs=1e-12)


def test_fid_singular_product():
    assert frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 1.0])) == pytest.approx(2.0, abs=1e-9)


def test_feature_statistics_use_unbiased_covariance():
    # three "images" of constant value 0, 0.5, 1 through a pixel-averaging model, 4 features
    feats = np.repeat(np.array([[0.0], [0.5], [1.0]]), 4, axis=1)
    mu, sigma = feature_statistics(feats)
    np.testing.assert_allclose(mu, 0.5)
    np.testing.assert_allclose(sigma, np.full((4, 4), 0.25))


def _eig_trace(s1, s2):
    return np.sqrt(scipy.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()


@pytest.mark.parametrize("n,d", [(50, 64), (5, 64), (3, 16)])
def test_fid_fewer_samples_than_dimensions_is_finite(n, d):
    rng = np.random.default_rng(n + d)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = fid_from_features(x, y)
    (mu1, s1), (mu2, s2) = feature_statistics(x), feature_statistics(y)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _eig_trace(s1, s2)
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", [lambda m: m + 0.1j, lambda m: np.full_like(m, np.nan)])
def test_fid_falls_back_to_symmetric_form_when_sqrtm_fails(monkeypatch, bad):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((5, 16)), rng.standard_normal((5, 16)) + 0.3
    (mu1, s1), (mu2, s2) = feature_statistics(x), feature_statistics(y)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _eig_trace(s1, s2)
    real_sqrtm = scipy.linalg.sqrtm
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m: bad(real_sqrtm(m)))
    with pytest.warns(RuntimeWarning, match="symmetric"):
        value = frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(expected, rel=1e-6)


def test_fid_symmetric_form_matches_sqrtm_on_full_rank():
    rng = np.random.default_rng(6)
    s1, s2 = np.cov(rng.standard_normal((200, 6)), rowvar=False), np.cov(rng.standard_normal((200, 6)) * 2, rowvar=False)
    assert trace_sqrt_product_symmetric(s1, s2) == pytest.approx(np.trace(scipy.linalg.sqrtm(s1 @ s2)).real, rel=1e-10)


def test_fid_identical_statistics_near_zero():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 8))
    assert abs(fid_from_features(x, x)) < 1e-9


def test_fid_rejects_shape_mismatch():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# --------------------------------------------------------------------------- KID
def test_kid_test_vectors():
    assert kid(np.zeros((2, 4)), np.zeros((2, 4)))[0] == 0.0
    assert kid(np.array([[1.0], [1.0]]), np.array([[-1.0], [-1.0]])) == (pytest.approx(16.0), 0.0)
    assert kid(np.eye(2), -np.eye(2))[0] == pytest.approx(0.875)
    assert kid(np.array([[1.0], [-1.0]]), np.array([[1.0], [-1.0]]))[0] == pytest.approx(-8.0)


def test_kid_identical_sets_closed_form():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 6))
    k = np.array([[(a @ b / 6 + 1.0) ** 3 for b in x] for a in x])
    m = len(x)
    expected = -(2.0 / (m - 1)) * (np.mean(np.diag(k)) - np.mean(k))
    mean, std = kid(x, x, subsets=5)  # subset = whole set, only the order changes
    assert mean == pytest.approx(expected, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_mmd2_unbiased_matches_explicit_sums():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)) + 1.0
    k = lambda a, b: (0.5 * a @ b + 2.0) ** 2  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(4) for j in range(4) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(4) for j in range(4))
    expected = (xx + yy) / 12 - 2 * xy / 16
    assert mmd2_unbiased(x, y, degree=2, gamma=0.5, coef0=2.0) == pytest.approx(expected, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (4, 4)


def test_kid_subsets_are_seeded_and_sized():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((20, 5)) + 0.5
    a, b = kid(x, y, subsets=10, subset_size=8, seed=7), kid(x, y, subsets=10, subset_size=8, seed=7)
    assert a == b and a[1] > 0
    assert kid(x, y, subsets=10, subset_size=8, seed=8) != a
    with pytest.raises(ValueError):
        kid(x[:1], y)


# --------------------------------------------------------------------------- IS
def test_is_uniform_is_one():
    assert inception_score(np.full((40, 7), 1 / 7)) == (pytest.approx(1.0), pytest.approx(0.0))


def test_is_balanced_one_hot_is_k():
    k = 10
    probs = np.eye(k)[np.arange(200) % k]
    assert inception_score(probs, splits=10)[0] == pytest.approx(k)
    # sorted labels: every split holds one class
    assert inception_score(np.sort(np.arange(200) % k)[:, None] == np.arange(k), splits=10)[0] == pytest.approx(1.0)
    two = np.zeros((8, 1008))
    two[np.arange(8), np.arange(8) % 2] = 1.0
    assert inception_score(two, splits=1)[0] == pytest.approx(2.0)


@pytest.mark.smoke
def test_is_two_class_soft_value_and_logits():
    probs = np.array([[0.9, 0.1]] * 3 + [[0.1, 0.9]] * 3)
    expected = math.exp(math.log(2) + 0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert inception_score(probs, splits=1)[0] == pytest.approx(expected, rel=1e-12)
    logits = np.log(probs) + 3.0
    np.testing.assert_allclose(softmax64(logits), probs, rtol=1e-12)


def test_is_std_over_splits_and_errors():
    probs = np.concatenate([np.eye(2)[np.arange(4) % 2], np.full((4, 2), 0.5)])
    mean, std = inception_score(probs, splits=2)  # split scores 2 and 1
    assert (mean, std) == (pytest.approx(1.5), pytest.approx(0.5))
    with pytest.raises(ValueError):
        inception_score(probs, splits=9)


def test_non_finite_or_mismatched_inputs_are_a_value_error_naming_them():
    good = np.random.default_rng(0).normal(size=(10, 3))
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="the features hold 1 NaN or infinite value"):
        fid_from_features(good, bad)
    with pytest.raises(ValueError, match="the second features hold 1 NaN"):
        kid(good, bad, subsets=2, subset_size=5)
    with pytest.raises(ValueError, match=r"same D, got shapes \(10, 3\) and \(10, 4\)"):
        kid(good, np.zeros((10, 4)), subsets=2)
    probs = np.full((10, 4), 0.25)
    assert inception_score(probs, splits=2)[0] == pytest.approx(1.0)
    for wrong in (probs * 2, np.where(probs > 0, np.nan, 0), softmax64(good) - 0.5):
        with pytest.raises(ValueError, match="rows of class probabilities"):
            inception_score(wrong, splits=2)
