"""One rule for seed lists, wherever they are written (``--seeds``, an experiment file's ``seeds:``)."""

from __future__ import annotations

import pytest

from excolor.limits import MAX_SEED, MAX_SEEDS
from excolor.seeds import count_seeds, parse_seeds


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-3", [0, 1, 2, 3]), ("5, 1-2,5", [1, 2, 5]), (" 7 ", [7]), ("3 - 4", [3, 4]), (f"{MAX_SEED}", [MAX_SEED])],
)
def test_parse_seeds(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds
    assert count_seeds(text) == len(seeds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected N, N-M"),
        ("a", "expected N, N-M"),
        ("-1", "expected N, N-M"),
        ("1-", "expected N, N-M"),
        ("1,,2", "expected N, N-M"),
        ("3-1", "'3-1': a range N-M needs N <= M"),
        ("0-99999999999", "'0-99999999999': seeds are at most 4294967295"),
        ("4294967296", "seeds are at most 4294967295"),
        ("1" + "0" * 5000, "seeds are at most 4294967295"),
        (f"0-{MAX_SEEDS}", f"{MAX_SEEDS + 1:,} seeds; at most {MAX_SEEDS:,}"),
        (f"0-{MAX_SEEDS // 2},{MAX_SEEDS}-{2 * MAX_SEEDS}", "seeds; at most"),
    ],
)
def test_parse_seeds_refuses(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_seeds(text)
    assert fragment in str(info.value) and "--seeds" not in str(info.value) and len(str(info.value)) < 200


def test_count_seeds_merges_overlaps_without_listing() -> None:
    assert count_seeds(f"0-{MAX_SEEDS - 1},0-{MAX_SEEDS - 1}") == MAX_SEEDS  # no 10-million-element list
