"""The batch search: exact answers on monotone totals, verified at the answer and one above."""

from __future__ import annotations

import pytest

from caffemem.errors import NetError, UserError
from caffemem.fit import largest_fitting


def test_finds_exact_boundary_of_affine_total():
    # 1000 + 37*b <= 5000  ->  b <= 108.1  ->  108
    r = largest_fitting(lambda b: 1000 + 37 * b, 5000)
    assert r.best == 108 and r.best_total == 1000 + 37 * 108
    assert r.next_value == 109 and r.next_total > 5000


def test_nothing_fits():
    r = largest_fitting(lambda b: 10**9 + b, 100)
    assert not r.fits_at_all and r.best is None


def test_invalid_values_count_as_not_fitting():
    def total(b):
        if b > 50:
            raise NetError("shape does not line up")
        return b
    assert largest_fitting(total, 10**6).best == 50


def test_non_monotone_model_is_reported():
    seen = set()

    def drifting(b):  # answers differently when asked twice: the verification catches it
        if b in seen:
            return 10**9
        seen.add(b)
        return b
    with pytest.raises(UserError, match="monotone"):
        largest_fitting(drifting, 6)


@pytest.mark.parametrize("guess", [1, 2, 50, 108, 109, 200, 10**5])
def test_guess_never_changes_the_answer(guess):
    r = largest_fitting(lambda b: 1000 + 37 * b, 5000, guess=guess)
    assert r.best == 108
