"""The SQLAlchemy Core schema shared by SQLite and PostgreSQL.

Every resource row keeps its whole wire body (JSON text) plus the fields that
lists filter and sort on as indexed columns. Ids are case-preserving in the body
and unique case-insensitively through the lower-cased ``*_key`` columns. Every
row belongs to one account. Datetimes are naive UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
#: Lower-cased ids for uniqueness, keyset paging and $filter ranges: byte order on PostgreSQL
#: (COLLATE "C") so range scans agree with Python and use the index.
ID_KEY = String(64).with_variant(String(64, collation="C"), "postgresql")
#: A job's id: a job schedule names its jobs ``<schedule id>:job-<n>``, longer than the 64 of an id.
JOB_ID = String(128)
JOB_ID_KEY = String(128).with_variant(String(128, collation="C"), "postgresql")
NODE_ID_KEY = String(128).with_variant(String(128, collation="C"), "postgresql")
STATE = String(24)
PK = BigInteger().with_variant(Integer(), "sqlite")


def _resource_columns() -> list[Column]:
    return [
        Column("etag", String(40), nullable=False),
        Column("last_modified", DateTime, nullable=False),
        Column("body", Text, nullable=False),
    ]


pools = Table(
    "pools",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("id", ID, nullable=False),
    Column("id_key", ID_KEY, nullable=False),
    Column("state", STATE, nullable=False),
    Column("allocation_state", STATE, nullable=False),
    Column("vm_size", String(64), nullable=False),
    Column("enable_auto_scale", Boolean, nullable=False),
    Column("enable_inter_node_communication", Boolean, nullable=False),
    Column("creation_time", DateTime, nullable=False),
    Column("state_transition_time", DateTime, nullable=False),
    Column("allocation_state_transition_time", DateTime, nullable=False),
    *_resource_columns(),
    #: When its autoscale formula is evaluated next (NULL: autoscale is off).
    Column("autoscale_due_at", DateTime, nullable=True),
    UniqueConstraint("account", "id_key", name="uq_pools_account_id"),
    Index("ix_pools_autoscale_due_at", "autoscale_due_at"),
)

#: Certificates by (algorithm, thumbprint): their public part only (domain/certificates.py).
certificates = Table(
    "certificates",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("id_key", ID_KEY, nullable=False),
    Column("state", STATE, nullable=False),
    Column("state_transition_time", DateTime, nullable=False),
    *_resource_columns(),
    UniqueConstraint("account", "id_key", name="uq_certificates_account_id"),
)

#: Core-seconds each pool used per aggregation interval (Pool_ListUsageMetrics): rows outlive their pool.
pool_usage = Table(
    "pool_usage",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("pool_id_key", ID_KEY, nullable=False),
    #: The interval's start as the wire writes it (keyset paging orders by it, then by pool).
    Column("interval_key", String(32), nullable=False),
    Column("interval_start", DateTime, nullable=False),
    Column("core_seconds", sa.Float, nullable=False, server_default="0"),
    Column("body", Text, nullable=False),
    UniqueConstraint("account", "interval_key", "pool_id_key", name="uq_pool_usage_interval_pool"),
)

#: What the server recorded of a pool at a time, for its autoscale formula (domain/pool_autoscale.py).
pool_samples = Table(
    "pool_samples",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("pool_pk", PK, ForeignKey("pools.pk", ondelete="CASCADE"), nullable=False),
    Column("time", DateTime, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_pool_samples_pool_time", "pool_pk", "time"),
    Index("ix_pool_samples_time", "time"),
)

COUNTER_COLUMNS = [f"{kind}_{bucket}" for kind in ("task", "slot")
                   for bucket in ("active", "running", "completed", "succeeded", "failed")]

jobs = Table(
    "jobs",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("id", JOB_ID, nullable=False),
    Column("id_key", JOB_ID_KEY, nullable=False),
    Column("state", STATE, nullable=False),
    Column("pool_id_key", ID_KEY, nullable=True),
    Column("priority", Integer, nullable=False),
    Column("creation_time", DateTime, nullable=False),
    Column("state_transition_time", DateTime, nullable=False),
    Column("end_time", DateTime, nullable=True),
    Column("has_preparation", Boolean, nullable=False),
    #: When the scheduler last placed a task of this job beside other jobs of its priority
    #: (jobDefaultOrder none serves the least recently served first).
    Column("last_served", DateTime, nullable=True),
    *_resource_columns(),
    *[Column(name, BigInteger, nullable=False, server_default="0") for name in COUNTER_COLUMNS],
    #: The job schedule that created the job (NULL: a job added by itself).
    Column("job_schedule_key", ID_KEY, nullable=True),
    UniqueConstraint("account", "id_key", name="uq_jobs_account_id"),
    Index("ix_jobs_account_state", "account", "state"),
    # (Led by the schedule: an index led by (account) alone could be taken for a probe by (account,
    # id_key) while the statistics make the account look small, and read all its jobs.)
    Index("ix_jobs_schedule_account_id", "job_schedule_key", "account", "id_key"),
)

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("id", ID, nullable=False),
    Column("id_key", ID_KEY, nullable=False),
    Column("state", STATE, nullable=False),
    Column("creation_time", DateTime, nullable=False),
    Column("state_transition_time", DateTime, nullable=False),
    Column("end_time", DateTime, nullable=True),
    Column("do_not_run_until", DateTime, nullable=True),
    Column("do_not_run_after", DateTime, nullable=True),
    *_resource_columns(),
    #: Where its occurrences count from, the first one not yet used or lost (domain/job_schedules.py),
    #: and when the server must look at it again (NULL: when its job ends, or never).
    Column("origin", DateTime, nullable=False),
    Column("next_index", Integer, nullable=False, server_default="0"),
    Column("due_at", DateTime, nullable=True),
    Column("jobs_created", Integer, nullable=False, server_default="0"),
    #: The auto pool all its jobs run on (poolLifetimeOption jobschedule), once the first made it.
    Column("pool_id", ID, nullable=True),
    UniqueConstraint("account", "id_key", name="uq_job_schedules_account_id"),
    Index("ix_job_schedules_due_at", "due_at"),
)


def _where(predicate: str) -> dict[str, sa.TextClause]:
    """A partial index's predicate, the same on SQLite and PostgreSQL."""
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


tasks = Table(
    "tasks",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("job_pk", PK, ForeignKey("jobs.pk", ondelete="CASCADE"), nullable=False),
    Column("id", ID, nullable=False),
    Column("id_key", ID_KEY, nullable=False),
    Column("state", STATE, nullable=False),
    Column("result", String(16), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("required_slots", Integer, nullable=False),
    Column("creation_time", DateTime, nullable=False),
    Column("state_transition_time", DateTime, nullable=False),
    Column("start_time", DateTime, nullable=True),
    Column("end_time", DateTime, nullable=True),
    *_resource_columns(),
    #: The node running the task and the id of that run (events for other runs are stale).
    Column("node_pk", PK, nullable=True),
    Column("run_id", String(64), nullable=True),
    #: When the completed task's directory is removed from its node (endTime + retentionTime).
    Column("retain_until", DateTime, nullable=True),
    Column("files_removed", Boolean, nullable=False, server_default=sa.false()),
    #: How often the task's node was lost while it ran (NULL: never).
    Column("recoveries", Integer, nullable=True),
    #: A reservation (prefetch, services/reservations.py): the task stays active while its run waits in
    #: the queue of the node's agent, which starts it when a slot frees. ``reserved_node_pk`` NULL with a
    #: run id: the reservation is being cancelled (the agent has been told to drop or kill that run).
    Column("reserved_run_id", String(64), nullable=True),
    Column("reserved_node_pk", PK, nullable=True),
    Column("reserved_agent_id", String(64), nullable=True),
    Column("reserved_at", DateTime, nullable=True),
    UniqueConstraint("job_pk", "id_key", name="uq_tasks_job_id"),
    # Lists of a job's tasks in one state, by id. Led by state: led by job_pk, PostgreSQL could take it
    # for a probe by (job_pk, id_key) while the statistics make the job look small (any job newer than
    # the last ANALYZE), and read every entry of the job (migration 0015).
    Index("ix_tasks_state_job_id", "state", "job_pk", "id_key"),
    # Partial indexes: only the rows their queries look for. A task added costs no entry in
    # them, and most transitions touch them once (an entry in, or out) instead of twice.
    Index("ix_tasks_active", "job_pk", "pk", **_where("state = 'active'")),  # scheduling order
    Index("ix_tasks_node", "node_pk", **_where("node_pk IS NOT NULL")),
    Index("ix_tasks_run", "run_id", **_where("run_id IS NOT NULL")),
    Index("ix_tasks_retain_until", "retain_until", **_where("retain_until IS NOT NULL")),
    Index("ix_tasks_reserved_run", "reserved_run_id", **_where("reserved_run_id IS NOT NULL")),
    Index("ix_tasks_reserved_node", "reserved_node_pk", **_where("reserved_node_pk IS NOT NULL")),
    Index("ix_tasks_reserved_agent", "reserved_agent_id", **_where("reserved_agent_id IS NOT NULL")),
)

#: The instances of a multi-instance task's current attempt: subtasks 1..N-1 (the node each runs on, its run
#: while it holds that node, its SubtaskInformation body) and row 0, the primary's coordination (its run is
#: the task's own).
subtasks = Table(
    "subtasks",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("task_pk", PK, ForeignKey("tasks.pk", ondelete="CASCADE"), nullable=False),
    Column("instance", Integer, nullable=False),
    Column("node_pk", PK, nullable=True),
    Column("run_id", String(64), nullable=True),
    #: Its coordination command ended successfully (the primary's application waits for every instance).
    Column("coordinated", Boolean, nullable=False, server_default=sa.false()),
    Column("body", Text, nullable=False),
    UniqueConstraint("task_pk", "instance", name="uq_subtasks_task_instance"),
    Index("ix_subtasks_node", "node_pk", **_where("run_id IS NOT NULL")),
    Index("ix_subtasks_run", "run_id", **_where("run_id IS NOT NULL")),
)


def _execution_columns(prefix: str) -> list[Column]:
    return [
        Column(f"{prefix}_state", STATE, nullable=True),
        Column(f"{prefix}_start_time", DateTime, nullable=True),
        Column(f"{prefix}_end_time", DateTime, nullable=True),
        Column(f"{prefix}_exit_code", Integer, nullable=True),
        Column(f"{prefix}_result", String(16), nullable=True),
    ]


nodes = Table(
    "nodes",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("pool_id_key", ID_KEY, nullable=False),
    Column("id", String(128), nullable=False),
    Column("id_key", NODE_ID_KEY, nullable=False),
    Column("state", STATE, nullable=False),
    #: A dedicated node (false: low-priority, which may be preempted).
    Column("dedicated", Boolean, nullable=False, server_default=sa.true()),
    Column("scheduling_state", STATE, nullable=False),
    Column("state_transition_time", DateTime, nullable=False),
    Column("last_boot_time", DateTime, nullable=True),
    Column("allocation_time", DateTime, nullable=True),
    *_resource_columns(),
    *_execution_columns("start_task"),
    #: Scheduler state, kept out of the wire body: capacity, usage, counters and the hosting agent.
    Column("slots", Integer, nullable=False, server_default="1"),
    Column("used_slots", Integer, nullable=False, server_default="0"),
    #: The slots its reservations hold (prefetch: tasks.reserved_node_pk), moved where they are made and end.
    Column("reserved_slots", Integer, nullable=False, server_default="0"),
    Column("running_tasks", Integer, nullable=False, server_default="0"),
    Column("total_tasks_run", Integer, nullable=False, server_default="0"),
    Column("total_tasks_succeeded", Integer, nullable=False, server_default="0"),
    Column("agent_id", String(64), nullable=True),
    Column("start_run_id", String(64), nullable=True),
    #: "reboot" or "reimage" once the node's running tasks end (taskcompletion / retaineddata).
    Column("pending_restart", String(16), nullable=True),
    #: When the node's allocation ends (a Slurm time limit); NULL: it does not.
    Column("available_until", DateTime, nullable=True),
    UniqueConstraint("account", "pool_id_key", "id_key", name="uq_nodes_pool_id"),
    Index("ix_nodes_agent", "agent_id"),
    Index("ix_nodes_start_run", "start_run_id", **_where("start_run_id IS NOT NULL")),
)

#: A node agent process: it hosts one or more nodes of one pool and holds a credential.
agents = Table(
    "agents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("pool_id_key", ID_KEY, nullable=False),
    Column("credential_hash", String(128), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("local", Boolean, nullable=False),
    Column("registered", DateTime, nullable=False),
    #: When the agent last called any server (each server writes what it saw once a second).
    Column("seen_at", DateTime, nullable=True),
    #: What its host used when it last said (JSON, agent/usage.py): the pool's autoscale samples.
    Column("usage", Text, nullable=True),
)


#: One row per (job, node) that ran the job's preparation or release task; rows
#: outlive the node, so List Preparation And Release Task Status still shows them.
prep_release = Table(
    "prep_release",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("job_pk", PK, ForeignKey("jobs.pk", ondelete="CASCADE"), nullable=False),
    Column("pool_id_key", ID_KEY, nullable=False),
    Column("node_id_key", NODE_ID_KEY, nullable=False),
    *_execution_columns("prep"),
    *_execution_columns("release"),
    Column("body", Text, nullable=False),
    Column("node_pk", PK, nullable=True),
    Column("prep_run_id", String(64), nullable=True),
    Column("release_run_id", String(64), nullable=True),
    #: The node rebooted or was reimaged since the preparation ran: it must run again first.
    Column("prep_stale", Boolean, nullable=False, server_default=sa.false()),
    UniqueConstraint("job_pk", "pool_id_key", "node_id_key", name="uq_prep_release_job_node"),
    # (a preparation's or release's report names its row by run id)
    Index("ix_prep_release_prep_run", "prep_run_id", **_where("prep_run_id IS NOT NULL")),
    Index("ix_prep_release_release_run", "release_run_id", **_where("release_run_id IS NOT NULL")),
)


#: Commands for agents, on PostgreSQL: written in the transaction that decided them, taken by
#: whichever server the agent calls (cluster/channel.py). In order of ``pk``.
agent_commands = Table(
    "agent_commands",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("agent_id", String(64), nullable=False, index=True),
    Column("body", Text, nullable=False),
)

#: An agent's answer to a file request that reached another server than the one asking, on
#: PostgreSQL: kept until the asking server takes it (at once, woken by NOTIFY).
file_answers = Table(
    "file_answers",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created", DateTime, nullable=False),
)


#: Which server leads (store/lease.py; PostgreSQL writes its holder here).
server_lease = Table(
    "server_lease",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("holder", Text, nullable=False),
)
