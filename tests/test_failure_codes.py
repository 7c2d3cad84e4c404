"""Every failure code a worker can record has a plain sentence, and a worker's failure carries a known code."""

from __future__ import annotations

import pytest

from models.status import Failure, reason_of
from workers.processing.errors import IgnoredByPolicy, PermanentError, TransientError


@pytest.mark.parametrize("failure", list(Failure))
def test_every_code_has_a_sentence_a_person_can_read(failure: Failure) -> None:
    assert failure.value == failure.value.lower() and " " not in failure.value
    assert len(failure.sentence) > 20 and failure.sentence[0].islower() and not failure.sentence.endswith(".")
    assert reason_of(failure.value) == failure.sentence


def test_codes_and_sentences_are_each_said_once() -> None:
    assert len({failure.value for failure in Failure}) == len(Failure)
    assert len({failure.sentence for failure in Failure}) == len(Failure)


def test_an_unknown_stored_code_is_shown_as_it_is() -> None:
    assert reason_of("from_a_newer_version") == "from_a_newer_version"
    assert reason_of(None) is None and reason_of("") is None


@pytest.mark.parametrize("kind", [PermanentError, TransientError, IgnoredByPolicy])
def test_a_worker_failure_carries_a_known_code_and_a_detail(kind: type[PermanentError]) -> None:
    error = kind(Failure.UNLINKED_PLAN, "plan pro_x is not in Plan")
    assert (error.code, error.detail) == (Failure.UNLINKED_PLAN, "plan pro_x is not in Plan")
    assert kind(Failure.INVALID_PAYLOAD).detail == Failure.INVALID_PAYLOAD.sentence  # no detail: the code's sentence
    with pytest.raises(ValueError):
        kind("a_code_nobody_defined")  # type: ignore[arg-type]


def test_a_transient_error_without_a_code_is_the_generic_one() -> None:
    assert TransientError().code is Failure.TRANSIENT_ERROR
