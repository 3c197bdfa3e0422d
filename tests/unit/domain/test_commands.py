"""Run ids: the kind's prefix, never the same twice."""

from openbatch.domain import commands


def test_run_ids_keep_their_kind_and_never_repeat() -> None:
    ids = [commands.new_run_id(kind) for kind in "tprs" * 2500]
    assert len(set(ids)) == len(ids)
    assert all(run_id[:2] == f"{kind}-" for run_id, kind in zip(ids, "tprs" * 2500))
