#!/usr/bin/env bash
# A single-host Slurm cluster for the Slurm-backed pool tests (Debian's slurmctld, slurmd, munge).
# Idempotent: does nothing when `sinfo` already answers. Needs root and Debian's package registry;
# prints why and exits 0 where it cannot (the Slurm tests then skip, saying so).
set -uo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "slurm.sh: not root: Slurm is not installed; the Slurm tests will skip" >&2; exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge \
      >/dev/null; } || { echo "slurm.sh: apt-get could not install Slurm; the Slurm tests will skip" >&2; exit 0; }
fi

HOST=$(hostname -s)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
cat > /tmp/openbatch-slurm.conf <<CONF
ClusterName=openbatch
SlurmctldHost=${HOST}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=30
MaxArraySize=100001
MaxJobCount=200000
KillWait=2
SlurmdTimeout=30
SlurmdParameters=config_overrides
NodeName=${HOST} CPUs=16 RealMemory=16000 State=UNKNOWN
PartitionName=batch Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
if cmp -s /tmp/openbatch-slurm.conf /etc/slurm/slurm.conf && timeout 5 sinfo -h >/dev/null 2>&1; then
  exit 0   # up, with this configuration
fi
if ! cmp -s /tmp/openbatch-slurm.conf /etc/slurm/slurm.conf; then
  cp /tmp/openbatch-slurm.conf /etc/slurm/slurm.conf
  pkill -x slurmctld; pkill -x slurmd   # restarted below with the new configuration
  for _ in $(seq 1 50); do { pgrep -x slurmctld || pgrep -x slurmd; } >/dev/null || break; sleep 0.2; done
fi
# The host has fewer CPUs than the 16 the tests use: config_overrides makes slurmd believe the configuration.
pgrep -x munged >/dev/null || runuser -u munge -- munged || munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 50); do
  if timeout 2 sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mix|alloc'; then exit 0; fi
  scontrol update nodename="${HOST}" state=resume >/dev/null 2>&1
  sleep 0.2
done
echo "slurm.sh: Slurm did not come up: $(tail -n 3 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log 2>&1 | tr '\n' ' ')" >&2
exit 0
