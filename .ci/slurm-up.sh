#!/usr/bin/env bash
# Bring up a real single-node Slurm (munge, MariaDB, slurmdbd, slurmctld, slurmd) for the slurm tests.
#
# Everything lives in one folder ($HARNESS_SLURM_DIR, default /tmp/harness-slurm); nothing goes to
# /etc/slurm. The node has two fake GPUs (character devices + gres.conf). On success the last line
# printed is `export SLURM_CONF=...`, also written to $DIR/env, which tests/slurm_util.py reads.
# Idempotent: if the cluster already answers, it only prints that line. Stop it with .ci/slurm-down.sh.
# See /work/shared/slurm-notes.md for why each step is the way it is.
set -euo pipefail

DIR=${HARNESS_SLURM_DIR:-/tmp/harness-slurm}
# Small on purpose, so that a sweep of a few jobs already exercises the chunking of job arrays.
MAX_ARRAY_SIZE=${HARNESS_SLURM_MAX_ARRAY_SIZE:-4}
HOST=$(hostname -s)
export SLURM_CONF=$DIR/slurm.conf

log() { echo "slurm-up: $*" >&2; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$((limit * 4))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "timed out waiting for $what (logs in $DIR/log)"; exit 1
}

node_ready() { sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }

if [[ -f $SLURM_CONF ]] && node_ready; then
  echo "export SLURM_CONF=$SLURM_CONF"; exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null \
   || ! command -v slurmdbd >/dev/null || ! command -v sbatch >/dev/null; then
  log "installing slurm, munge and mariadb"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null
fi

mkdir -p "$DIR"/{state,spool,log,run,dev,mysql}

# --- munge -----------------------------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [[ -f /etc/munge/munge.key ]] || mungekey -c
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 munged bash -c 'munge -n | unmunge'
fi

# --- MariaDB (private datadir, own socket, 127.0.0.1 only) -------------------------------------------
DB_SOCK=$DIR/run/mysql.sock
DB_PASS=harness-slurm
if ! alive "$DIR/run/mariadb.pid"; then
  if [[ ! -d $DIR/mysql/mysql ]]; then
    mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
      >"$DIR/log/mariadb-install.log" 2>&1
  fi
  setsid mariadbd --user=root --datadir="$DIR/mysql" --socket="$DB_SOCK" --bind-address=127.0.0.1 \
    --port=3306 --pid-file="$DIR/run/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
    </dev/null >/dev/null 2>&1 &
  wait_for 30 mariadb mariadb-admin --socket="$DB_SOCK" ping
  mariadb --socket="$DB_SOCK" -e "
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
fi

# --- configuration ------------------------------------------------------------------------------------
for i in 0 1; do
  [[ -c $DIR/dev/fakegpu$i ]] || { rm -f "$DIR/dev/fakegpu$i"; mknod "$DIR/dev/fakegpu$i" c 195 "$i"; }
done
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

cat >"$DIR/slurm.conf" <<EOF
ClusterName=harness
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
GresTypes=gpu
MaxArraySize=$MAX_ARRAY_SIZE
KillWait=5
SchedulerParameters=kill_invalid_depend
NodeName=$HOST CPUs=$(nproc) RealMemory=$MEM_MB Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$DIR/gres.conf" <<EOF
AutoDetect=off
NodeName=$HOST Name=gpu File=$DIR/dev/fakegpu[0-1]
EOF

cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$DIR/slurmdbd.conf"

# --- Slurm daemons, in order ----------------------------------------------------------------------------
if ! alive "$DIR/run/slurmdbd.pid"; then
  slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
fi
if ! alive "$DIR/run/slurmctld.pid"; then
  slurmctld -c  # a fresh queue: jobs left by an earlier run would hold the node and starve the tests
  wait_for 30 slurmctld scontrol ping
fi
if ! alive "$DIR/run/slurmd.pid"; then
  slurmd
fi
wait_for 60 "node $HOST to be idle" node_ready

echo "export SLURM_CONF=$SLURM_CONF" | tee "$DIR/env"
