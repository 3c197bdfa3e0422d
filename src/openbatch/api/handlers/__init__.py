"""Operation handlers: HTTP in, service call, HTTP out. No business rules here."""

from . import account, certificates, files, job_schedules, jobs, node_users, nodes, pools, tasks  # noqa: F401
