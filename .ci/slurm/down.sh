#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by .ci/slurm/up.sh: cancel its jobs, then stop
# exactly the daemons whose PIDs up.sh recorded (TERM, then KILL after 15 s), checking each
# PID still names that daemon first. Restores (or removes) /etc/slurm/slurm.conf.
# Never uses pkill/killall; a munged that up.sh reused is left alone.
set -uo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/gapscope-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by gapscope .ci/slurm/up.sh"

log() { echo "[slurm down] $*" >&2; }

alive() {  # alive PID NAME: the process exists, is not a zombie and is still NAME
    local pid=$1 name=$2
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cut -c1-15 </proc/"$pid"/comm 2>/dev/null)" = "${name:0:15}" ] || return 1
    [ "$(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null)" != "Z" ]
}

# Cancel what is left in the queue first so no slurmstepd outlives slurmd.
if [ -s "$DIR/pids/slurmctld.pid" ] && alive "$(cat "$DIR/pids/slurmctld.pid")" slurmctld; then
    scancel --quiet --full --state=PENDING,RUNNING,SUSPENDED "--user=$(id -un)" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -z "$(squeue -h -t PENDING,RUNNING,COMPLETING,SUSPENDED 2>/dev/null)" ] && break
        sleep 0.2
    done
fi

status=0
for name in slurmd slurmctld munged; do
    file="$DIR/pids/$name.pid"
    [ -s "$file" ] || continue
    pid=$(cat "$file")
    if alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 75); do
            alive "$pid" "$name" || break
            sleep 0.2
        done
        if alive "$pid" "$name"; then
            log "$name (pid $pid) ignored TERM; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        if alive "$pid" "$name"; then
            log "$name (pid $pid) is still running"
            status=1
            continue
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$file"
done

if [ -e "$CONF" ] && grep -qF "$MARKER" "$CONF"; then
    if [ -e "$DIR/slurm.conf.orig" ]; then
        mv -f "$DIR/slurm.conf.orig" "$CONF"
        log "restored the previous $CONF"
    else
        rm -f "$CONF"
    fi
fi
exit $status
