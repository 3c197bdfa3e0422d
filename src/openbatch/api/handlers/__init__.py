"""Operation handlers: HTTP in, service call, HTTP out. No business rules here."""

from . import account, certificates, files, job_schedules, jobs, nodes, pools, tasks  # noqa: F401
