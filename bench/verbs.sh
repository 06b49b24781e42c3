#!/usr/bin/env bash
# bench/verbs.sh: the operator verbs at scale (issue 14). N JSON-only
# sessions (taskerfs gen --json-only) are copied with one `cp -r` into a
# fresh taskerfs mount and made durable (`taskerfs sync`); the daemon's peak
# RSS and the files the kernel holds are printed before unmounting; then
# `taskerfs fsck` and `taskerfs reindex` of the unmounted data dir are timed
# with /usr/bin/time (wall, CPU, peak RSS). With --import, N legacy sessions
# (gen --layout legacy --json-only) are also imported into a fresh data dir
# with `taskerfs import` (sessions/s, peak RSS). The datasets and the
# ingested data dir are kept in WORK for reruns (delete WORK/data-N.done to
# ingest again).
#
#   bench/verbs.sh [N] [--work DIR] [--bin TASKERFS] [--no-reindex] [--import]
#
# N defaults to 10000, WORK to /var/tmp/taskerfs-verbs. TASKERFS_CPUPROFILE
# profiles of fsck and reindex are written to WORK.
set -euo pipefail
N=10000 W=/var/tmp/taskerfs-verbs BIN= REINDEX=1 IMPORT=0
while (($#)); do
	case $1 in
	--work) W=$2; shift ;;
	--bin) BIN=$(realpath "$2"); shift ;;
	--no-reindex) REINDEX=0 ;;
	--import) IMPORT=1 ;;
	[0-9]*) N=$1 ;;
	*) echo "verbs.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$W"
if [[ -z $BIN ]]; then
	BIN=$W/taskerfs
	(cd "$REPO" && go build -o "$BIN" ./cmd/taskerfs)
fi
command -v /usr/bin/time >/dev/null || { echo "verbs.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
MNT=$W/mnt DATA=$W/data-$N SRC=$W/src-$N
cleanup() { if mountpoint -q "$MNT"; then "$BIN" umount "$MNT" || fusermount3 -uz "$MNT"; fi; }
trap cleanup EXIT
if [[ ! -f $SRC.done ]]; then
	rm -rf "$SRC"
	"$BIN" gen --sessions "$N" --json-only "$SRC" >/dev/null
	touch "$SRC.done"
fi
if [[ ! -f $DATA.done ]]; then
	rm -rf "$DATA" "$MNT"
	mkdir -p "$DATA" "$MNT"
	"$BIN" mount --data "$DATA" "$MNT" --background
	t0=$(date +%s.%N)
	cp -r "$SRC/sessions" "$MNT/"
	"$BIN" sync --data "$DATA"
	t1=$(date +%s.%N)
	echo "ingest of $N sessions (cp -r + taskerfs sync): $(echo "$t1 - $t0" | bc) s, $(echo "$N / ($t1 - $t0)" | bc) sessions/s"
	grep -E "VmHWM|VmRSS" "/proc/$(cat "$DATA/taskerfs.pid")/status"
	"$BIN" stats --data "$DATA" | grep -i "kernel holds"
	"$BIN" umount "$MNT"
	touch "$DATA.done"
fi
/usr/bin/time -f "fsck: %e s wall, %U s user, %S s sys, %M KB peak RSS" env TASKERFS_CPUPROFILE="$W/fsck.pprof" "$BIN" fsck --data "$DATA" | tail -3
if ((REINDEX)); then
	/usr/bin/time -f "reindex: %e s wall, %U s user, %S s sys, %M KB peak RSS" env TASKERFS_CPUPROFILE="$W/reindex.pprof" "$BIN" reindex --data "$DATA" 2>&1 | tail -2
fi
if ((IMPORT)); then
	LEG=$W/legacy-$N
	if [[ ! -f $LEG.done ]]; then
		rm -rf "$LEG"
		"$BIN" gen --sessions "$N" --json-only --layout legacy "$LEG" >/dev/null
		touch "$LEG.done"
	fi
	rm -rf "$W/imported-$N"
	t0=$(date +%s.%N)
	/usr/bin/time -f "import: %e s wall, %U s user, %S s sys, %M KB peak RSS" "$BIN" import "$LEG" --data "$W/imported-$N" 2>&1 | grep -v "^\s*$" | tail -2
	t1=$(date +%s.%N)
	echo "import of $N legacy sessions: $(echo "$N / ($t1 - $t0)" | bc) sessions/s"
	rm -rf "$W/imported-$N"
fi
