from datetime import UTC, datetime, timedelta

import pytest
from billmig.errors import StepClaimedElsewhere
from billmig.progress import (
    ErrorRecord,
    StepStatus,
    SubjectProgress,
    SubjectState,
    claim,
    fail,
    remember_vendor_ids,
    succeed,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def fresh() -> SubjectProgress:
    return SubjectProgress(run_id="b", subject="cus_1234", enrolled_at=T0, updated_at=T0)


def test_first_claim_runs_the_step() -> None:
    progress = fresh()
    got = claim(progress, "contract", "runner-a", T0, LEASE)
    assert not got.already_succeeded
    assert got.attempt == 1
    assert progress.state is SubjectState.RUNNING
    assert progress.steps["contract"].lease_until == T0 + LEASE


def test_another_runner_cannot_claim_a_leased_step_but_can_after_the_lease() -> None:
    progress = fresh()
    claim(progress, "contract", "runner-a", T0, LEASE)
    with pytest.raises(StepClaimedElsewhere, match="held by 'runner-a'"):
        claim(progress, "contract", "runner-b", T0 + timedelta(minutes=1), LEASE)
    taken = claim(progress, "contract", "runner-b", T0 + LEASE + timedelta(seconds=1), LEASE)
    assert taken.attempt == 2
    assert progress.steps["contract"].runner == "runner-b"


def test_the_same_runner_may_reclaim_its_own_step_after_a_retry() -> None:
    progress = fresh()
    claim(progress, "contract", "runner-a", T0, LEASE)
    again = claim(progress, "contract", "runner-a", T0 + timedelta(seconds=3), LEASE)
    assert again.attempt == 2


def test_a_succeeded_step_is_reported_not_rerun_and_keeps_its_vendor_ids() -> None:
    progress = fresh()
    claim(progress, "contract", "runner-a", T0, LEASE)
    remember_vendor_ids(progress, "contract", {"metronome_contract_id": "c-1"}, T0)
    succeed(progress, "contract", {"commit_ids": "k-1"}, T0)
    again = claim(progress, "contract", "runner-b", T0 + timedelta(hours=1), LEASE)
    assert again.already_succeeded
    assert again.record.vendor_ids == {"metronome_contract_id": "c-1", "commit_ids": "k-1"}
    assert progress.steps["contract"].status is StepStatus.SUCCEEDED


def test_vendor_ids_survive_a_crash_between_create_and_complete() -> None:
    progress = fresh()
    claim(progress, "contract", "runner-a", T0, LEASE)
    remember_vendor_ids(progress, "contract", {"metronome_contract_id": "c-1"}, T0)
    resumed = claim(progress, "contract", "runner-b", T0 + LEASE * 2, LEASE)
    assert resumed.record.vendor_ids == {"metronome_contract_id": "c-1"}


def test_a_permanent_failure_bumps_the_revision_on_the_next_claim_a_transient_one_does_not() -> None:
    progress = fresh()
    claim(progress, "contract", "runner-a", T0, LEASE)
    fail(progress, "contract", ErrorRecord(type="VendorUnavailable", message="503", transient=True, at=T0), T0)
    assert claim(progress, "contract", "runner-a", T0, LEASE).record.revision == 1
    fail(progress, "contract", ErrorRecord(type="VendorRejected", message="400", transient=False, at=T0), T0)
    assert progress.state is SubjectState.FAILED
    assert claim(progress, "contract", "runner-a", T0, LEASE).record.revision == 2
