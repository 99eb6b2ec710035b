# A real single-node SLURM cluster on this (CI) machine, for tests/test_slurm.py. Source it, then
# `slurm_cluster_up`: installs Debian's slurmctld/slurmd/munge, writes /etc/slurm/slurm.conf (the plugin's
# in-job srun needs the default path), starts munged, slurmctld and slurmd by hand (no systemd) and
# stops exactly those PIDs on exit, whatever the exit status. Recipe and the settings without which
# runs hang: ../shared/FACTS.md, "SLURM on our machines".

SLURM_CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
SLURM_MARK="# written by enginebench .ci/slurm-cluster.sh"
SLURM_PIDS=()

slurm_cluster_down() {
    local pid
    if [ -n "${SLURM_STATE:-}" ] && command -v scancel >/dev/null; then
        scancel --full --quiet --user "$(id -un)" 2>/dev/null || true  # jobs of this cluster only
        for _ in $(seq 30); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.3; done
    fi
    for pid in "${SLURM_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SLURM_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SLURM_PIDS=()
    # Leave no config behind: with none, SLURM clients fail at once instead of retrying a dead controller.
    if [ -n "${SLURM_STATE:-}" ]; then
        rm -f "$SLURM_CONF" "$GRES_CONF"
        rm -rf "$SLURM_STATE"
    fi
}

slurm_cluster_logs() {
    tail -n 20 "$SLURM_STATE"/*.log >&2 || true
}

slurm_cluster_up() {
    local conf
    for conf in "$SLURM_CONF" "$GRES_CONF"; do
        if [ -e "$conf" ] && ! grep -qF "$SLURM_MARK" "$conf"; then
            echo "slurm-cluster: $conf exists and is not ours: refusing to replace a real cluster's config" >&2
            return 1
        fi
    done
    if ! command -v slurmctld >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            slurmctld slurmd slurm-client munge >/dev/null
    fi
    trap slurm_cluster_down EXIT
    trap 'exit 130' INT  # a signal ends the script, and with it the EXIT trap stops the daemons
    trap 'exit 143' TERM
    SLURM_STATE=$(mktemp -d /tmp/enginebench-slurm.XXXXXX)
    local node cpus mem_mb
    node=$(hostname -s)
    # Four times the cores (config_overrides): the tiny model's jobs spend most of their time starting
    # Python and waiting for the next status check, so several may share a core. Timings on CI are not results.
    cpus=$(( 4 * $(nproc) ))
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p "$SLURM_STATE/ctld" "$SLURM_STATE/d"
    cat > "$SLURM_CONF" <<EOF
$SLURM_MARK
ClusterName=enginebench-ci
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SLURM_STATE/ctld
SlurmdSpoolDir=$SLURM_STATE/d
SlurmctldPidFile=$SLURM_STATE/slurmctld.pid
SlurmdPidFile=$SLURM_STATE/slurmd.pid
SlurmctldLogFile=$SLURM_STATE/slurmctld.log
SlurmdLogFile=$SLURM_STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# The plugin reads job states with squeue (no accounting here): finished jobs must stay visible.
MinJobAge=600
KillWait=5
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    # Two fake GPUs (slurmd counts a GPU per device file: any character device will do): jobs that request
    # one or two (--gpus=N) are scheduled and run; nothing uses them.
    printf '%s\nName=gpu File=/dev/null\nName=gpu File=/dev/zero\n' "$SLURM_MARK" > "$GRES_CONF"

    install -d -o munge -g munge -m0755 /run/munge
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground >"$SLURM_STATE/munged.log" 2>&1 &
    SLURM_PIDS+=($!)
    local i
    for i in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    slurmctld -D >/dev/null 2>&1 &  # it logs to SlurmctldLogFile
    SLURM_PIDS+=($!)
    slurmd -D >/dev/null 2>&1 &
    SLURM_PIDS+=($!)
    for i in $(seq 100); do
        [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] && break
        sleep 0.3
    done
    if [ "$(sinfo -h -N -o %T 2>/dev/null)" != idle ]; then
        echo "slurm-cluster: node $node did not come up" >&2
        slurm_cluster_logs
        return 1
    fi
    echo "slurm-cluster: node $node idle ($cpus CPUs, $mem_mb MB, 1 fake GPU); daemons ${SLURM_PIDS[*]}"
}
