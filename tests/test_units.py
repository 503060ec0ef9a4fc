"""Human byte units in and out."""

import pytest

from caffemem.errors import UserError
from caffemem.units import capacity_phrase, exact, human, parse_size


def test_every_spelling_of_a_size_is_binary_as_card_makers_mean_it():
    for text in ("8G", "8GB", "8GiB", "8Gi", "8 GB", "8gb", "8g", "8192M", "8192MiB", "8192Mi",
                 "8589934592", "8.0G", "0.0078125T", "8589934592B"):
        assert parse_size(text) == 8 * 2**30, text
    assert parse_size("11.5G") == 23 * 2**29
    assert parse_size("11.3G") == int(11.3 * 2**30)  # exact to the byte, rounded down
    assert parse_size("1e10") == 10**10
    assert parse_size("1,048,576") == 2**20


@pytest.mark.parametrize("text, says", [
    ("8", "`8` is 8 bytes; did you mean 8G?"),
    ("8192", "did you mean 8192M?"),
    ("0", "more than 0 bytes"), ("0G", "more than 0 bytes"),
    ("-8G", "cannot be negative"),
    ("nan", "not a number"), ("inf", "not a number"), ("-inf", "not a number"),
    ("1e400", "out of range"), ("9" * 50, "out of range"),
    ("99999999999999999999999PiB", "at most 8 EiB"),
    ("", "empty size"), ("abc", "cannot read"), ("8 gigs", "cannot read"), ("8XB", "cannot read"),
    ("\x1b[2J8G", "'\\x1b[2J8G'"),  # echoed escaped, never raw
])
def test_bad_sizes_are_one_line_user_errors_naming_the_option(text, says):
    with pytest.raises(UserError) as e:
        parse_size(text, "--gpu-mem")
    msg = str(e.value)
    assert msg.startswith("--gpu-mem ") and says in msg and "\n" not in msg and "\x1b" not in msg


def test_interpretation_is_echoed_exactly():
    assert exact(8 * 2**30) == "8.00 GiB = 8,589,934,592 B"
    assert capacity_phrase(parse_size("8G")) == "GPU: 8.00 GiB = 8,589,934,592 B"


def test_human_is_binary_and_exact_below_kib():
    assert human(1023) == "1023 B"
    assert human(1536) == "1.5 KiB"
    assert human(3 * 2**30) == "3.0 GiB"
    assert human(-2 * 2**20) == "-2.0 MiB"
    assert human(10**12 * 4).endswith("TiB")
