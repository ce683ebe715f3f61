#!/usr/bin/env bash
# Starts a real single-node SLURM cluster on this machine for the tests (and for `.ci/run`).
# Idempotent: if slurmctld already answers with our config, it does nothing.
#
# The node "pipe-node" has 2 fake GPUs declared as GRES (char devices /dev/pipe-fakegpu{0,1}, clones of /dev/null) so
# `--gres=gpu:N` requests are scheduled and CUDA_VISIBLE_DEVICES is set by slurmd, exactly as on a GPU cluster.
# No cgroups here: memory limits are enforced by jobacct_gather's OverMemoryKill (polled every second).
# No slurmdbd: finished-job states come from `scontrol show job` (MinJobAge keeps them 10 minutes) and from the
# job-completion log (jobcomp/filetxt) at /var/log/slurm/jobcomp.log.
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "start-cluster: slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)" >&2
  exit 1
fi

CONF_DIR=/etc/slurm
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOG=/var/log/slurm
mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOG" /run/munge /var/lib/munge /var/log/munge /run/slurm

CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2/1024) - 1024}' /proc/meminfo)

for i in 0 1; do
  [ -e /dev/pipe-fakegpu$i ] || mknod /dev/pipe-fakegpu$i c 1 3
done

cat > "$CONF_DIR/slurm.conf.new" <<CONF
# Written by pipe's test/slurm/start-cluster.sh
ClusterName=pipe
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
MinJobAge=600
# Jobs without --mem get 512M per CPU, not the whole node (which would serialise every job).
DefMemPerCPU=512
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SchedulerParameters=sched_interval=1,bf_interval=1
MessageTimeout=20
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeHostname=localhost CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$CONF_DIR/gres.conf" <<CONF
NodeName=localhost Name=gpu File=/dev/pipe-fakegpu[0-1]
CONF
# No cgroup.conf: 22.05 has no "disabled" cgroup plugin; with task/none and proctrack/linuxproc it loads cgroup/v1
# without using it.
rm -f "$CONF_DIR/cgroup.conf"

changed=1
if [ -f "$CONF_DIR/slurm.conf" ] && cmp -s "$CONF_DIR/slurm.conf" "$CONF_DIR/slurm.conf.new"; then changed=0; fi
mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"

# Debian's munge package creates the key on install; make one if a minimal install did not.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then mungekey --create --force --keyfile=/etc/munge/munge.key
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; fi
fi

if ! pgrep -x munged >/dev/null; then
  chown -R root:root /etc/munge /run/munge /var/lib/munge /var/log/munge || true
  chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
  munged --force
fi

if [ "$changed" = 0 ] && pgrep -x slurmctld >/dev/null && pgrep -x slurmd >/dev/null && scontrol ping >/dev/null 2>&1; then
  scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
  echo "start-cluster: already running"
  exit 0
fi

pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
sleep 1
slurmctld -c 2>/dev/null || slurmctld
slurmd

for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "start-cluster: SLURM is up ($(sinfo -h -o '%N %c CPUs %m MB %G'))"
    exit 0
  fi
  scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "start-cluster: SLURM did not come up; logs:" >&2
tail -n 20 "$LOG/slurmctld.log" >&2 || true; tail -n 20 "$LOG/slurmd.log" >&2 || true
exit 1
