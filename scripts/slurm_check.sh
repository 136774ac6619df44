#!/usr/bin/env bash
# Run a suite twice, locally (--cores N) and through configs/profiles/slurm on a real SLURM
# scheduler, and check that both runs wrote the same metrics.csv and tables (docs/cluster.md).
#
#   scripts/slurm_check.sh [SUITE] [WORKDIR] [-- extra snakemake --config items]
#
# SUITE defaults to smoke (a suite name or a suite file); WORKDIR to a new temporary folder.
# Brings the single-node cluster up first when no SLURM controller answers
# (scripts/slurm_single_node.sh up, needs root). Exit status 0 only when the outputs agree.
# Run from the repository root with the project's venv active.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${1:-smoke}
WORK=${2:-$(mktemp -d -t trajbench-slurm-XXXXXX)}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
EXTRA=("$@")
CORES=$(nproc)

if ! sinfo -h >/dev/null 2>&1; then
    scripts/slurm_single_node.sh up
fi
mkdir -p "$WORK"
echo "suite $SUITE, outputs under $WORK"

start=$(date +%s)
snakemake --cores "$CORES" --config "suite=$SUITE" "results=$WORK/local" "${EXTRA[@]}" \
    >"$WORK/local.log" 2>&1
mid=$(date +%s)
# The plugin writes its own logs under .snakemake/slurm_logs of the working directory.
snakemake --profile configs/profiles/slurm --config "suite=$SUITE" "results=$WORK/slurm" \
    "${EXTRA[@]}" >"$WORK/slurm.log" 2>&1 &
controller=$!
# A job SLURM can never start (more CPUs or memory than any node has, an unknown constraint)
# stays pending and Snakemake waits for it for ever: stop the run and name the job instead.
# Only this run's jobs: the plugin names every job after the run ID it logs.
while kill -0 "$controller" 2>/dev/null; do
    run_id=$(grep -m1 -oE 'SLURM run ID: [0-9a-f-]+' "$WORK/slurm.log" | awk '{print $4}' || true)
    stuck=""
    if [ -n "$run_id" ]; then
        stuck=$(squeue -h -n "$run_id" -t PD -o "%i %j %r %k" 2>/dev/null \
            | grep -E " (PartitionConfig|BadConstraints|PartitionNodeLimit|InvalidQOS|InvalidAccount) " \
            || true)
    fi
    if [ -n "$stuck" ]; then
        echo "SLURM can never start these jobs (jobid name reason comment):" >&2
        echo "$stuck" >&2
        kill "$controller" 2>/dev/null || true
        echo "$stuck" | awk '{print $1}' | xargs -r scancel
        wait "$controller" 2>/dev/null || true
        exit 1
    fi
    sleep 20
done
wait "$controller"
end=$(date +%s)
echo "local run $((mid - start)) s, SLURM run $((end - mid)) s"

status=0
name=$(basename "$(find "$WORK/local" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
for f in "$WORK/local/$name/metrics.csv" "$WORK/local/$name"/tables/*.csv; do
    rel=${f#"$WORK/local/"}
    if cmp -s "$f" "$WORK/slurm/$rel"; then
        echo "same: $rel"
    else
        echo "DIFFERENT: $rel" >&2
        diff "$f" "$WORK/slurm/$rel" | head -20 >&2 || true
        status=1
    fi
done
exit "$status"
