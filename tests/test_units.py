"""Human byte units in and out."""

import pytest

from caffemem.errors import UserError
from caffemem.units import human, parse_size


def test_parse_binary_and_decimal():
    assert parse_size("8GiB") == 8 * 2**30
    assert parse_size("11GB") == 11 * 10**9
    assert parse_size("1.5 GiB") == 3 * 2**29
    assert parse_size("12000MiB") == 12000 * 2**20
    assert parse_size("123") == 123
    with pytest.raises(UserError):
        parse_size("eight gigs")


def test_human_is_binary_and_exact_below_kib():
    assert human(1023) == "1023 B"
    assert human(1536) == "1.5 KiB"
    assert human(3 * 2**30) == "3.0 GiB"
    assert human(-2 * 2**20) == "-2.0 MiB"
    assert human(10**12 * 4).endswith("TiB")
