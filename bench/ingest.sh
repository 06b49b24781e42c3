#!/usr/bin/env bash
# bench/ingest.sh: ingest through the mount (issue 14). N JSON-only sessions
# (taskerfs gen --json-only, kept in WORK for reruns) are copied with one
# `cp -r` into a fresh taskerfs mount and made durable with `taskerfs sync`,
# and the same `cp -r` goes into go-fuse's example/loopback run as an
# unprivileged user (no passthrough; /dev/fuse is made 0666 for the run and
# restored on exit), made durable with `sync -f` of its backing dir. The two
# alternate, REPS rounds each; the medians, the sessions/s and the ratio
# (taskerfs time / loopback time) are printed, with the load average.
#
#   bench/ingest.sh [N] [--reps R] [--work DIR] [--user NAME] [--profile] [--bin TASKERFS]
#
# N defaults to 2000, REPS to 3, WORK to /var/tmp/taskerfs-ingest, the user
# to nobody. --profile saves a CPU profile of the taskerfs daemon over each
# round's cp -r + sync as WORK/profiles/ingest.repN.pprof. --bin measures a
# taskerfs binary built elsewhere (an older commit, to compare).
{
set -uo pipefail
export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=2000 REPS=3 WORK=/var/tmp/taskerfs-ingest NP_USER=nobody PROFILE=0 TFS_BIN=
while (($#)); do
	case $1 in
	--reps) REPS=$2; shift ;;
	--work) WORK=$2; shift ;;
	--user) NP_USER=$2; shift ;;
	--profile) PROFILE=1 ;;
	--bin) TFS_BIN=$(realpath "$2"); shift ;;
	-h | --help) awk 'NR > 1 && /^\{/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	[0-9]*) N=$1 ;;
	*) echo "ingest.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
WORK=$(realpath -m "$WORK")
BIN=$WORK/bin SRC=$WORK/src-$N TFS_DATA=$WORK/tfs-data LB_ORIG=$WORK/lb-orig
TFS_MNT=$WORK/mnt/taskerfs LB_MNT=$WORK/mnt/loopback LOGS=$WORK/logs
mkdir -p "$BIN" "$LOGS" "$TFS_MNT" "$LB_MNT" "$WORK/profiles"
log() { echo "[ingest $(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

NP_UID=$(id -u "$NP_USER") && NP_GID=$(id -g "$NP_USER") || die "no user $NP_USER"
((NP_UID != 0)) || die "--user $NP_USER is root"
as_np() { setpriv --reuid="$NP_UID" --regid="$NP_GID" --clear-groups -- "$@"; }

FUSE_MODE=$(stat -c %a /dev/fuse)
TFS_PID="" LB_PID=""
cleanup() {
	mountpoint -q "$TFS_MNT" && { "$BIN/taskerfs" umount "$TFS_MNT" >/dev/null 2>&1 || fusermount3 -uz "$TFS_MNT"; }
	mountpoint -q "$LB_MNT" && fusermount3 -uz "$LB_MNT"
	[[ -n $TFS_PID ]] && kill "$TFS_PID" 2>/dev/null
	[[ -n $LB_PID ]] && kill "$LB_PID" 2>/dev/null
	chmod "$FUSE_MODE" /dev/fuse
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building taskerfs and loopback"
(cd "$REPO" && go build -o "$BIN/taskerfs" ./cmd/taskerfs &&
	go build -o "$BIN/loopback" github.com/hanwen/go-fuse/v2/example/loopback) || die "build failed"
[[ -z $TFS_BIN ]] || cp "$TFS_BIN" "$BIN/taskerfs"
chmod 0755 "$WORK" "$BIN"

if [[ ! -f $SRC.done ]]; then
	rm -rf "$SRC"
	log "generating $N JSON-only sessions"
	"$BIN/taskerfs" gen --sessions "$N" --json-only "$SRC" >&2 || die "gen failed"
	touch "$SRC.done"
fi
chmod -R a+rX "$SRC"
FILES=$(find "$SRC/sessions" -type f | wc -l)
BYTES=$(du -sb --apparent-size "$SRC/sessions" | cut -f1)
chmod 0666 /dev/fuse

waitmount() {
	local i
	for ((i = 0; i < 1500; i++)); do
		"$@" && return 0
		sleep 0.02
	done
	return 1
}

# now: seconds since the epoch, to the nanosecond.
now() { date +%s.%N; }

# cpu PID: CPU seconds (user + system) the process has used.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

run_tfs() {
	local rep=$1 t0 t1 t2
	rm -rf "$TFS_DATA"
	mkdir -p "$TFS_DATA"
	"$BIN/taskerfs" mount --data "$TFS_DATA" --trash-days 0 "$TFS_MNT" >>"$LOGS/taskerfs.log" 2>&1 &
	TFS_PID=$!
	waitmount mountpoint -q "$TFS_MNT" || die "taskerfs did not mount; see $LOGS/taskerfs.log"
	sync
	((PROFILE)) && curl -sf -X POST --unix-socket "$TFS_DATA/control.sock" http://taskerfs/debug/cpuprofile/start >/dev/null
	t0=$(now)
	cp -r "$SRC/sessions" "$TFS_MNT/" || die "cp into taskerfs failed"
	t1=$(now)
	"$BIN/taskerfs" sync --data "$TFS_DATA" >/dev/null || die "taskerfs sync failed"
	t2=$(now)
	((PROFILE)) && curl -sf -X POST --unix-socket "$TFS_DATA/control.sock" http://taskerfs/debug/cpuprofile/stop \
		-o "$WORK/profiles/ingest.rep$rep.pprof"
	local got c
	c=$(cpu "$TFS_PID")
	got=$(find "$TFS_MNT/sessions" -type f | wc -l)
	((got == FILES)) || die "taskerfs holds $got files, want $FILES"
	"$BIN/taskerfs" umount "$TFS_MNT" >>"$LOGS/taskerfs.log" 2>&1 || fusermount3 -u "$TFS_MNT"
	wait "$TFS_PID"
	TFS_PID=""
	echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t0" | bc) $c"
}

run_lb() {
	local t0 t1 t2
	rm -rf "$LB_ORIG"
	mkdir -p "$LB_ORIG"
	chown "$NP_UID:$NP_GID" "$LB_ORIG" "$LB_MNT"
	setpriv --reuid="$NP_UID" --regid="$NP_GID" --clear-groups -- "$BIN/loopback" -q "$LB_MNT" "$LB_ORIG" >>"$LOGS/loopback.log" 2>&1 &
	LB_PID=$!
	waitmount as_np mountpoint -q "$LB_MNT" || die "loopback did not mount; see $LOGS/loopback.log"
	sync
	t0=$(now)
	as_np cp -r "$SRC/sessions" "$LB_MNT/" || die "cp into loopback failed"
	t1=$(now)
	sync -f "$LB_ORIG"
	t2=$(now)
	local c
	c=$(cpu "$LB_PID")
	fusermount3 -u "$LB_MNT"
	wait "$LB_PID"
	LB_PID=""
	echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t0" | bc) $c"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -a TCP TALL TCPU LCP LALL LCPU
log "$N sessions, $FILES files, $((BYTES / 1000000)) MB; $REPS rounds; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= REPS; r++)); do
	read -r c a u < <(run_lb) || exit 1
	LCP+=("$c") LALL+=("$a") LCPU+=("$u")
	read -r c a u < <(run_tfs "$r") || exit 1
	TCP+=("$c") TALL+=("$a") TCPU+=("$u")
	log "round $r: loopback cp ${LCP[-1]}s (+sync ${LALL[-1]}s, daemon CPU ${LCPU[-1]}s), taskerfs cp ${TCP[-1]}s (+sync ${TALL[-1]}s, daemon CPU ${TCPU[-1]}s); load $(cut -d' ' -f1 /proc/loadavg)"
done
tcp=$(printf '%s\n' "${TCP[@]}" | median) tall=$(printf '%s\n' "${TALL[@]}" | median)
lcp=$(printf '%s\n' "${LCP[@]}" | median) lall=$(printf '%s\n' "${LALL[@]}" | median)
tcpu=$(printf '%s\n' "${TCPU[@]}" | median) lcpu=$(printf '%s\n' "${LCPU[@]}" | median)
echo
echo "ingest of $N JSON-only sessions ($FILES files, $((BYTES / 1000000)) MB), medians of $REPS, $(date -u +%FT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| | cp -r | cp -r + durable | sessions/s (durable) | daemon CPU | daemon CPU per session |"
echo "|---|---:|---:|---:|---:|---:|"
printf '| taskerfs | %.2f s | %.2f s | %.0f | %.1f s | %.2f ms |\n' "$tcp" "$tall" "$(echo "$N / $tall" | bc -l)" "$tcpu" "$(echo "1000 * $tcpu / $N" | bc -l)"
printf '| loopback (no passthrough) | %.2f s | %.2f s | %.0f | %.1f s | %.2f ms |\n' "$lcp" "$lall" "$(echo "$N / $lall" | bc -l)" "$lcpu" "$(echo "1000 * $lcpu / $N" | bc -l)"
printf '| ratio taskerfs / loopback | %.2f | %.2f | | %.2f | |\n' "$(echo "$tcp / $lcp" | bc -l)" "$(echo "$tall / $lall" | bc -l)" "$(echo "$tcpu / $lcpu" | bc -l)"
}
