#!/usr/bin/env bash
# A single-node SLURM cluster on this Debian machine, for running the workflow through
# configs/profiles/slurm on a real scheduler (docs/cluster.md, tests marked `slurm`).
#
#   scripts/slurm_single_node.sh up      # install (apt) if needed, configure, start daemons
#   scripts/slurm_single_node.sh status  # sinfo
#   scripts/slurm_single_node.sh down    # stop the daemons started by `up`
#
# Needs root (apt-get, daemons). No systemd is assumed: the daemons are started by hand.
# One partition `debug` holds this machine with all its cores and 90% of its memory, no
# GRES (no GPUs), no accounting storage (so job status comes from squeue; the profile
# detects that). Slurm 22.05 from Debian 12's packages was used to write this.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)

install_packages() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return; fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
}

write_conf() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    cat >"$CONF" <<EOF
# Written by trajbench scripts/slurm_single_node.sh: a one-node test cluster.
ClusterName=trajbench
SlurmctldHost=${NODE}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# squeue must still see a finished job when Snakemake polls it (about every 40 s).
MinJobAge=600
NodeName=${NODE} CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemons() {
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    chmod 0400 /etc/munge/munge.key
    [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null \
        || runuser -u munge -- /usr/sbin/munged
    [ -f /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null \
        || /usr/sbin/slurmctld -i
    sleep 2
    [ -f /run/slurmd.pid ] && kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null || /usr/sbin/slurmd
    for _ in $(seq 30); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            sinfo
            return
        fi
        sleep 1
    done
    echo "slurm did not come up; see /var/log/slurm/*.log" >&2
    exit 1
}

stop_daemons() {
    for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
}

case "${1:-}" in
    up) install_packages; write_conf; start_daemons ;;
    status) sinfo ;;
    down) stop_daemons ;;
    *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
