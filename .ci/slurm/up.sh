#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine, without systemd (CI and local tests).
#
#   bash .ci/slurm/up.sh                 install if missing, then start munged, slurmctld, slurmd
#   bash .ci/slurm/up.sh --install-only  only install the Debian packages (idempotent)
#   bash .ci/slurm/down.sh               stop exactly the daemons this script started
#
# Needs root on Debian/Ubuntu (apt: slurmctld slurmd slurm-client munge). No slurmdbd: job status
# comes from squeue, so Snakemake must run with `slurm-status-command: squeue` (MinJobAge=600
# keeps finished jobs visible long enough). Config: /etc/slurm/slurm.conf, the only path that
# also works inside jobs (the plugin's jobstep strips SLURM_CONF). A config that this script did
# not write is backed up and restored by down.sh. State, logs and the PIDs it started live in
# $LOCAL_SLURM_DIR (default /tmp/gapscope-slurm): pids/<daemon>.pid.
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/gapscope-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by gapscope .ci/slurm/up.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)
NODE=localnode
PARTITION=debug

log() { echo "[slurm up] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"

install_packages() {
    local missing=0 cmd
    for cmd in slurmctld slurmd sbatch squeue sinfo munged munge; do
        command -v "$cmd" >/dev/null 2>&1 || missing=1
    done
    if [ "$missing" -eq 0 ]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "SLURM is not installed and there is no apt-get"
    log "installing ${PACKAGES[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

alive() {  # alive PID NAME: the process exists, is not a zombie and is still NAME
    local pid=$1 name=$2
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cut -c1-15 </proc/"$pid"/comm)" = "${name:0:15}" ] || return 1
    [ "$(awk '{print $3}' /proc/"$pid"/stat)" != "Z" ]
}

start_daemon() {  # start_daemon NAME CMD...: run in its own session, record its PID
    local name=$1
    shift
    setsid "$@" </dev/null >"$DIR/log/$name.out" 2>&1 &
    local pid=$!
    echo "$pid" >"$DIR/pids/$name.pid"
    sleep 0.3
    alive "$pid" "$name" || die "$name exited right away; see $DIR/log/$name.out"
    log "started $name (pid $pid)"
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 5; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "timed out after ${seconds}s waiting for $what"
}

node_idle() {
    sinfo -h -n "$NODE" -o %t | grep -qE '^(idle|mix|alloc)'
}

install_packages
if [ "${1:-}" = "--install-only" ]; then
    exit 0
fi

mkdir -p "$DIR"/{pids,log,state,spool,run}
if [ -s "$DIR/pids/slurmctld.pid" ] && alive "$(cat "$DIR/pids/slurmctld.pid")" slurmctld \
    && [ -s "$DIR/pids/slurmd.pid" ] && alive "$(cat "$DIR/pids/slurmd.pid")" slurmd; then
    log "already up (pids in $DIR/pids)"
    exit 0
fi

# munge: reuse a working munged that someone else started, else start our own as user munge.
if [ -s "$DIR/pids/munged.pid" ] && alive "$(cat "$DIR/pids/munged.pid")" munged; then
    log "munged already running (pid $(cat "$DIR/pids/munged.pid"))"
elif munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "reusing the running munged (not ours: down.sh leaves it alone)"
else
    [ -s /etc/munge/munge.key ] || mungekey --create --force
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground
    wait_for 10 "munged" bash -c "munge -n | unmunge"
fi

# slurm.conf: node topology as slurmd detects it, memory 1 GiB below the detected value.
if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    if timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
        die "a SLURM cluster that this script did not start is running ($CONF); not touching it"
    fi
    cp -p "$CONF" "$DIR/slurm.conf.orig"
    log "backed up the existing $CONF to $DIR/slurm.conf.orig"
fi
TOPOLOGY=$(slurmd -C | head -1)
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$TOPOLOGY"; }
CPUS=$(field CPUs)
SOCKETS=$(($(field Boards) * $(field SocketsPerBoard)))
MEMORY=$(($(field RealMemory) - 1024))
HOST=$(hostname -s)
mkdir -p /etc/slurm
cat >"$CONF" <<EOF
$MARKER
ClusterName=gapscope
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MpiDefault=none
# no cgroups and no systemd here: track processes by parentage, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that asks for no memory takes the whole node
DefMemPerCPU=1024
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# finished jobs stay visible to squeue for 10 min (the plugin's squeue status mode needs it)
MinJobAge=600
SlurmdTimeout=300
InactiveLimit=0
KillWait=10
NodeName=$NODE NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=$SOCKETS CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore) RealMemory=$MEMORY State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

start_daemon slurmctld slurmctld -D -c -i  # -c: start from an empty job state
wait_for 30 "slurmctld" scontrol ping
start_daemon slurmd slurmd -D -N "$NODE"
wait_for 60 "node $NODE to become idle" node_idle
log "up: partition $PARTITION, node $NODE ($CPUS CPUs, $MEMORY MB); logs in $DIR/log"
