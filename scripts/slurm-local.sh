#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for kd-sweep's SLURM tests.
#
#   scripts/slurm-local.sh start   install slurm-wlm and munge when missing, start munged, slurmctld
#                                  and slurmd on localhost; prints the slurm.conf path (idempotent)
#   scripts/slurm-local.sh stop    stop the daemons started here
#
# Settings follow what ran on this kind of machine (no cgroups, root, everything in one folder);
# MaxArraySize is kept small on purpose so the tests exercise kd-sweep's splitting of large arrays.
set -euo pipefail
state=${KD_SWEEP_SLURM_DIR:-/tmp/kd-sweep-slurm}
conf=$state/slurm.conf
say() { echo "slurm-local: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

running() {
  [ -f "$conf" ] && SLURM_CONF=$conf timeout 5 sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'
}

stop() {
  for d in slurmd slurmctld; do
    if [ -f "$state/$d.pid" ]; then
      kill "$(cat "$state/$d.pid")" 2>/dev/null || true
    fi
  done
  sleep 1
  for d in slurmd slurmctld; do
    if [ -f "$state/$d.pid" ]; then
      kill -9 "$(cat "$state/$d.pid")" 2>/dev/null || true
      rm -f "$state/$d.pid"
    fi
  done
}

case "${1:-}" in
start)
  if running; then echo "$conf"; exit 0; fi
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    say "installing slurm-wlm and munge"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 ||
      { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }
  fi
  if [ ! -s /etc/munge/munge.key ]; then
    as_root mkdir -p /etc/munge
    as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    as_root chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    as_root chmod 0400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
    as_root chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    as_root munged --force 2>/dev/null || as_root munged --force
    sleep 1
  fi
  munge -n | unmunge >/dev/null || { say "munge does not work here"; exit 1; }
  stop
  rm -rf "$state"
  mkdir -p "$state/spool" "$state/state"
  host=$(hostname -s)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  cat > "$conf" <<CONF
ClusterName=kdsweep
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
MaxArraySize=4
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  SLURM_CONF=$conf slurmctld
  SLURM_CONF=$conf slurmd
  for _ in $(seq 1 60); do
    if running; then echo "$conf"; exit 0; fi
    sleep 0.5
  done
  say "the cluster did not come up; logs: $state/slurmctld.log, $state/slurmd.log"
  tail -5 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
  exit 1
  ;;
stop)
  stop
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
