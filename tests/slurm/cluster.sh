#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on localhost, for the sharded-cache test: munged, slurmctld
# and slurmd from Debian's munge / slurm-wlm, every file (config, key, sockets, state, logs) under
# DIR, ports chosen free. Root only (slurmd runs jobs as the submitting user).
#   tests/slurm/cluster.sh start DIR     prints "export SLURM_CONF=DIR/slurm.conf" when the node is idle
#   tests/slurm/cluster.sh stop DIR      stops every daemon started under DIR
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

stop() {
    for p in slurmd slurmctld munged; do
        if [ -f "$dir/$p.pid" ]; then
            pid=$(cat "$dir/$p.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$p.pid"
        fi
    done
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "cluster.sh: needs root (slurmd)" >&2; exit 77; }
for b in munged slurmctld slurmd sbatch; do
    command -v "$b" >/dev/null || { echo "cluster.sh: $b is missing (packaging/setup.sh installs munge and slurm-wlm)" >&2; exit 77; }
done

# A port nothing listens on (bash's /dev/tcp: no python needed on a fresh machine).
free_port() {
    local p
    while :; do
        p=$(shuf -i 20000-60000 -n 1)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
       --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=vitscope-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MaxArraySize=1000
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
    if sinfo -h -o '%t' 2>/dev/null | grep -q '^idle'; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "cluster.sh: the node did not come up in 20 s (logs in $dir)" >&2
stop
exit 1
