"""A job schedule on real local nodes (azure-batch 15.1): every 2 seconds a job whose job manager runs,
completes the job (killJobOnCompletion), and lets the next occurrence start the next job."""

from __future__ import annotations

from datetime import timedelta

from azure.batch import BatchClient, models as m

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import drop_pool, make_pool, read_file, sh
from tests.sdk.conftest import uid


def test_a_recurring_schedule_runs_its_job_managers_one_job_after_another(batch: BatchClient) -> None:
    pool_id = make_pool(batch, nodes=1, slots=1)
    schedule_id = uid("every2s")
    try:
        manager = m.BatchJobManagerTask(id="jm", command_line=sh('echo "run of $AZ_BATCH_JOB_ID"'))
        batch.create_job_schedule(m.BatchJobScheduleCreateOptions(
            id=schedule_id, schedule=m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)),
            job_specification=m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id=pool_id),
                                                      job_manager_task=manager)))

        def completed() -> list[m.BatchJob]:
            done = [job for job in batch.list_jobs_from_schedule(schedule_id) if job.state == "completed"]
            return done if len(done) >= 2 else []

        jobs = sorted(wait_for(completed, timeout=20), key=lambda job: job.creation_time)
        assert [job.id for job in jobs[:2]] == [f"{schedule_id}:job-1", f"{schedule_id}:job-2"]
        assert all(job.execution_info.termination_reason == "JMComplete" for job in jobs)
        assert jobs[1].creation_time - jobs[0].creation_time >= timedelta(seconds=1.9)   # one per occurrence
        task = batch.get_task(jobs[0].id, "jm")
        assert task.execution_info.exit_code == 0
        assert read_file(batch, jobs[0].id, "jm").strip() == f"run of {schedule_id}:job-1"
        stats = batch.get_job_schedule(schedule_id, expand=["stats"]).job_schedule_statistics
        assert stats.succeeded_tasks_count >= 2 and stats.failed_tasks_count == 0
        batch.begin_terminate_job_schedule(schedule_id, polling_interval=0).result()
        assert batch.get_job_schedule(schedule_id).state == "completed"
    finally:
        batch.begin_delete_job_schedule(schedule_id, polling_interval=0).result()
        drop_pool(batch, pool_id)
