#!/usr/bin/env bash
# Stop the cluster started by .ci/slurm-up.sh: SIGTERM by pid file, in the order slurmd, slurmctld,
# slurmdbd, mariadb, munged (a kill -9 of slurmctld can lose a just-submitted job). Leaves the folder
# (logs, state) in place; removes the env file so the tests see the cluster as down.
set -uo pipefail

DIR=${HARNESS_SLURM_DIR:-/tmp/harness-slurm}

stop() {  # stop NAME PIDFILE
  local name=$1 pidfile=$2 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then echo "slurm-down: $name ($pid) still running after 30 s" >&2; fi
  fi
  rm -f "$pidfile"
}

rm -f "$DIR/env"
stop slurmd "$DIR/run/slurmd.pid"
stop slurmctld "$DIR/run/slurmctld.pid"
stop slurmdbd "$DIR/run/slurmdbd.pid"
stop mariadb "$DIR/run/mariadb.pid"
stop munged /run/munge/munged.pid
