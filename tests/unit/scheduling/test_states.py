from __future__ import annotations

import pytest

from spotless.domain.scheduling.states import STATUSES, can_move, holds_time


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", "confirmed"),
        ("confirmed", "in_progress"),
        ("in_progress", "completed"),
        ("pending", "cancelled"),
        ("confirmed", "cancelled"),
        ("confirmed", "no_show"),
    ],
)
def test_legal_moves(current: str, target: str) -> None:
    assert can_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", "completed"),
        ("pending", "in_progress"),
        ("completed", "confirmed"),
        ("cancelled", "confirmed"),
        ("in_progress", "cancelled"),
        ("no_show", "completed"),
    ],
)
def test_illegal_moves(current: str, target: str) -> None:
    assert not can_move(current, target)


def test_terminal_states_release_the_worker() -> None:
    assert {s for s in STATUSES if holds_time(s)} == {"pending", "confirmed", "in_progress"}
