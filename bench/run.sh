#!/usr/bin/env bash
# bench/run.sh: run the same workload on a taskerfs mount and on go-fuse's
# loopback example over the same disk, interleaved phase by phase, and print
# one markdown table of medians with the taskerfs/loopback ratio.
#
#   bench/run.sh [--quick] [--reps N] [--work DIR] [--no-fresh-fs] [--keep]
#
# --quick        small dataset and small fio/fs_mark sizes (under a minute)
# --reps N       repetitions (default 3); medians are over them
# --work DIR     work dir (default /var/tmp/taskerfs-bench); binaries, dataset,
#                backing stores, mount points, logs and results live there
# --no-fresh-fs  keep both backing stores in DIR itself instead of on a fresh
#                journaled ext4 image loop-mounted under DIR (see DESIGN.md,
#                "Measuring on these machines")
# --keep         keep the backing stores and the ext4 image afterwards
# --self-test    mount loopback in taskerfs' place (checks the script itself)
#
# A figure that a build of taskerfs cannot produce yet (no search/, no gc,
# no .taskerfs/stats.json) is printed as n/a; the run goes on.
# The whole script is one { ... } block so that bash parses it before running
# it: editing this file during a run does not change the running one.
{
set -uo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0 REPS="" WORK=/var/tmp/taskerfs-bench FRESH_FS=1 KEEP=0 A_KIND=taskerfs
while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--reps) REPS=$2; shift ;;
	--work) WORK=$2; shift ;;
	--no-fresh-fs) FRESH_FS=0 ;;
	--keep) KEEP=1 ;;
	--self-test) A_KIND=loopback ;;
	-h | --help) awk 'NR > 1 && /^# The whole script/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if ((QUICK)); then
	SESSIONS=30 SHOTS=6 AUDIO=6 FIO_MB=32 FSMARK_N=150 SETTLE=0.1
	REPS=${REPS:-3}
else
	SESSIONS=1000 SHOTS=10 AUDIO=10 FIO_MB=1024 FSMARK_N=2000 SETTLE=2
	REPS=${REPS:-3}
fi
DUP=0.4 SEED=1 QUERY=zanzibar QUERY_SHARE=0.05

BIN=$WORK/bin LOGS=$WORK/logs RES=$WORK/results
MNT_tfs=$WORK/mnt/taskerfs MNT_lb=$WORK/mnt/loopback
FSDIR=$WORK/fs IMG=$WORK/fs.img
STORE_tfs=$FSDIR/taskerfs-data STORE_lb=$FSDIR/loopback-orig
declare -A PID=() UP=() HWM=()

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup

cleanup() {
	local fs m
	for fs in tfs lb; do
		m=$(mnt "$fs")
		if mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
		if [[ -n ${PID[$fs]:-} ]] && kill -0 "${PID[$fs]}" 2>/dev/null; then
			kill "${PID[$fs]}" 2>/dev/null
			wait "${PID[$fs]}" 2>/dev/null
		fi
	done
	if mountpoint -q "$FSDIR" 2>/dev/null; then
		umount "$FSDIR" 2>/dev/null || umount -l "$FSDIR"
	fi
	if ((!KEEP)); then
		rm -f "$IMG"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

# mounted M: also true for a FUSE mount whose daemon died, where
# mountpoint(1) fails with "transport endpoint is not connected".
mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; }

mnt() { if [[ $1 == tfs ]]; then echo "$MNT_tfs"; else echo "$MNT_lb"; fi; }
store() { if [[ $1 == tfs ]]; then echo "$STORE_tfs"; else echo "$STORE_lb"; fi; }
kind() { if [[ $1 == tfs ]]; then echo "$A_KIND"; else echo loopback; fi; }
is_taskerfs() { [[ $(kind "$1") == taskerfs ]]; }

# timed CMD...: runs CMD, sets T to its wall time in microseconds.
T=0
timed() {
	local s=$EPOCHREALTIME rc e
	"$@"
	rc=$?
	e=$EPOCHREALTIME
	T=$((${e/./} - ${s/./}))
	return $rc
}

# rec METRIC FS VALUE appends one sample.
rec() { echo "$3" >>"$RES/$1.$2"; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# settle lets dirty pages drain so one phase's write-back does not land in
# the next phase's figure.
settle() {
	local i dirty
	sync
	for ((i = 0; i < 100; i++)); do
		dirty=$(awk '/^(Dirty|Writeback):/ { s += $2 } END { print s + 0 }' /proc/meminfo)
		((dirty < 4096)) && break
		sleep 0.1
	done
	sleep "$SETTLE"
}

# stat_field FS NAME prints a number from .taskerfs/stats.json, if any.
stat_field() {
	local f
	f=$(mnt "$1")/.taskerfs/stats.json
	[[ -r $f ]] || return 1
	tr -d '\0' <"$f" | grep -o "\"$2\": *[-0-9.eE+]*" | head -1 | sed 's/.*: *//'
}

# drained waits until taskerfs' write-back queue is empty, then syncs the
# disk: sync(2) does not reach a FUSE daemon, so the kernel's sync alone
# does not mean the daemon has written everything.
drained() {
	local fs=$1 i f pending
	is_taskerfs "$fs" || return 0
	f=$(mnt "$fs")/.taskerfs/stats.json
	for ((i = 0; i < 600; i++)); do
		[[ -r $f ]] || break
		pending=$(tr -d '\0' <"$f" | grep -oE '"(queueCritical|queueNormal|queueLow|dirtyBytes)": *[0-9]+' |
			awk -F': *' '{ s += $2 } END { print s + 0 }')
		((pending == 0)) && break
		sleep 0.05
	done
	sync
}

start_fs() {
	local fs=$1 m s i
	m=$(mnt "$fs") s=$(store "$fs")
	mounted "$m" && fusermount3 -uz "$m" # left over by a crashed run
	mkdir -p "$m" "$s"
	if is_taskerfs "$fs"; then
		"$BIN/taskerfs" mount --data "$s" "$m" >>"$LOGS/$fs.log" 2>&1 &
	else
		"$BIN/loopback" -q "$m" "$s" >>"$LOGS/$fs.log" 2>&1 &
	fi
	PID[$fs]=$!
	for ((i = 0; i < 300; i++)); do
		if mountpoint -q "$m"; then
			UP[$fs]=1
			return 0
		fi
		kill -0 "${PID[$fs]}" 2>/dev/null || break
		sleep 0.1
	done
	log "$(kind "$fs") did not mount; see $LOGS/$fs.log"
	UP[$fs]=0
	return 1
}

stop_fs() {
	local fs=$1 m pid i hwm
	m=$(mnt "$fs") pid=${PID[$fs]:-}
	[[ -n $pid ]] || return 0
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	if [[ -n $hwm ]] && ((hwm > ${HWM[$fs]:-0})); then HWM[$fs]=$hwm; fi
	if mounted "$m"; then
		if is_taskerfs "$fs"; then
			"$BIN/taskerfs" umount "$m" >>"$LOGS/$fs.log" 2>&1 || fusermount3 -u "$m"
		else
			fusermount3 -u "$m"
		fi
	fi
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$(kind "$fs") daemon $pid did not exit after unmount; killing it"
		kill "$pid"
	fi
	wait "$pid" 2>/dev/null
	mounted "$m" && fusermount3 -uz "$m"
	PID[$fs]="" UP[$fs]=0
}

# remount_cold FS: fresh daemon, empty kernel caches.
remount_cold() {
	stop_fs "$1"
	drop_caches
	start_fs "$1"
}

up() { [[ ${UP[$1]:-0} == 1 ]]; }

# ---------------------------------------------------------------- phases

copy_in() { cp -r "$DATASET/sessions" "$1/" && sync; }

ph_ingest() {
	local fs=$1 m
	m=$(mnt "$fs")
	timed copy_in "$m" || return 1
	local t1=$T
	timed drained "$fs"
	rec ingest "$fs" "$(calc "($t1 + $T) / 1e6")"
	rec stored "$fs" "$(du -sB1 "$(store "$fs")" | cut -f1)"
	local blobs
	if is_taskerfs "$fs" && blobs=$(stat_field "$fs" storedBytes); then rec stored_blobs "$fs" "$blobs"; fi
	return 0
}

list_meta() { (cd "$1/sessions" && ls -1 | awk '{ print $0 "/metadata.json" }' | xargs -d '\n' cat >/dev/null); }

ph_list() {
	local fs=$1 metric=$2
	timed list_meta "$(mnt "$fs")" && rec "$metric" "$fs" "$(calc "$T / 1e3" 1)"
}

read_all() { find "$1/sessions" -type f -print0 | xargs -0 cat >/dev/null; }

ph_read_all() {
	local fs=$1
	timed read_all "$(mnt "$fs")" && rec read_all "$fs" "$(calc "$LOGICAL / 1048576 / ($T / 1e6)" 0)"
}

ph_search() {
	local fs=$1 m out=$WORK/search.out
	m=$(mnt "$fs")
	if is_taskerfs "$fs"; then
		[[ -d $m/search ]] || return 1
		timed ls "$m/search/$QUERY" >"$out" 2>/dev/null || return 1
	else
		timed grep -rl "$QUERY" "$m/sessions" >"$out"
	fi
	rec search "$fs" "$(calc "$T / 1e3" 1)"
	rec hits "$fs" "$(wc -l <"$out")"
}

ph_hit_rate() {
	local r
	is_taskerfs "$1" || return 0
	r=$(stat_field "$1" cacheHitRate) && rec hit_rate "$1" "$(calc "$r * 100" 1)"
}

ph_fsmark() {
	local fs=$1 sync=$2 m out
	m=$(mnt "$fs")
	mkdir -p "$m/bench"
	out=$("$BIN/fsmark" -n "$FSMARK_N" -s 4096 -t 2 -S "$sync" -d "$m/bench" 2>>"$LOGS/$fs.log") || return 1
	rec "fsmark$sync" "$fs" "$(tail -1 <<<"$out" | awk '{ print $4 }')"
	settle
}

fio_job() {
	local fsync=0
	[[ $1 == write ]] && fsync=1
	fio --name="$1" --rw="$1" --bs=1M --size="${FIO_MB}M" --filename="$2/bench/fio.dat" \
		--end_fsync=$fsync --output-format=terse >>"$LOGS/fio.log" 2>&1
}

ph_fio() {
	local fs=$1 rw=$2 m
	m=$(mnt "$fs")
	[[ -n $FIO ]] || return 1
	mkdir -p "$m/bench" || return 1
	# Reading a file the write phase did not leave would time fio's lay-out.
	[[ $rw == write || -f $m/bench/fio.dat ]] || return 1
	timed fio_job "$rw" "$m" || return 1
	rec "fio_$rw" "$fs" "$(calc "$FIO_MB / ($T / 1e6)" 0)"
}

ph_rm() {
	local fs=$1 m
	m=$(mnt "$fs")
	timed rm -rf "$m/sessions" "$m/bench" || return 1
	local t1=$T
	timed sync
	rec rm "$fs" "$(calc "($t1 + $T) / 1e6")"
}

ph_gc() {
	local fs=$1
	drained "$fs"
	if is_taskerfs "$fs" && "$BIN/taskerfs" gc --help >/dev/null 2>&1; then
		timed "$BIN/taskerfs" gc --data "$(store "$fs")" >>"$LOGS/$fs.log" 2>&1 || return 1
		rec gc "$fs" "$(calc "$T / 1e6")"
	fi
	sync
	rec stored_after "$fs" "$(du -sB1 "$(store "$fs")" | cut -f1)"
}

# each PHASE FS... runs PHASE for every FS that is mounted, in the given order.
each() {
	local phase=$1 fs
	shift
	for fs in "$@"; do
		up "$fs" || continue
		"$phase" "$fs" || log "$phase $(kind "$fs"): failed, its figure is n/a"
	done
}

remount_each() {
	local fs
	for fs in "$@"; do
		remount_cold "$fs" || log "remount of $(kind "$fs") failed"
	done
}

# ---------------------------------------------------------------- set-up

mkdir -p "$BIN" "$LOGS" "$WORK/mnt"
rm -rf "$RES" && mkdir -p "$RES"
: >"$LOGS/tfs.log"
: >"$LOGS/lb.log"
: >"$LOGS/fio.log"

log "building taskerfs, loopback and fsmark"
(cd "$REPO" &&
	go build -o "$BIN/taskerfs" ./cmd/taskerfs &&
	go build -o "$BIN/fsmark" ./bench/fsmark &&
	go build -o "$BIN/loopback" github.com/hanwen/go-fuse/v2/example/loopback) || die "build failed"

FIO=$(command -v fio || true)
if [[ -z $FIO && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
	log "installing fio"
	apt-get install -y -qq fio >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq fio >/dev/null 2>&1)
	FIO=$(command -v fio || true)
fi
[[ -n $FIO ]] || log "fio not available: its rows are n/a"

DKEY="s$SESSIONS-x$SHOTS-a$AUDIO-d$DUP-seed$SEED-$QUERY$QUERY_SHARE"
DATASET=$WORK/dataset-$DKEY
if [[ ! -f $DATASET/.done ]]; then
	log "generating dataset $DKEY"
	rm -rf "$DATASET"
	"$BIN/taskerfs" gen "$DATASET" --sessions "$SESSIONS" --screenshots "$SHOTS" --audio "$AUDIO" \
		--dup "$DUP" --seed "$SEED" --plant "$QUERY=$QUERY_SHARE" --manifest "$DATASET/manifest.json" >&2 ||
		die "taskerfs gen failed"
	touch "$DATASET/.done"
fi
LOGICAL=$(du -sb --apparent-size "$DATASET/sessions" | cut -f1)
FILES=$(find "$DATASET/sessions" -type f | wc -l)
EXPECTED_HITS=$(grep -o "\"$QUERY\"" "$DATASET/manifest.json" | wc -l)

rm -rf "$STORE_tfs" "$STORE_lb"
mkdir -p "$FSDIR"
if mountpoint -q "$FSDIR"; then umount "$FSDIR"; fi
FS_NOTE="plain directories under $FSDIR"
if ((FRESH_FS)); then
	size_mb=$((LOGICAL * 3 / 1048576 + FIO_MB * 2 + 2048))
	rm -f "$IMG"
	if truncate -s "${size_mb}M" "$IMG" && mkfs.ext4 -q -F "$IMG" >>"$LOGS/mkfs.log" 2>&1 &&
		mount -o loop "$IMG" "$FSDIR" 2>>"$LOGS/mkfs.log"; then
		FS_NOTE="a fresh journaled ext4 image ($((size_mb / 1024)) GiB, loop-mounted) in $WORK"
	else
		log "could not loop-mount a fresh ext4 (need root); using plain directories"
		rm -f "$IMG"
	fi
fi
log "backing stores on $FS_NOTE"

# ---------------------------------------------------------------- the run

for ((rep = 1; rep <= REPS; rep++)); do
	# Alternate who goes first so that neither always runs second.
	if ((rep % 2)); then order=(tfs lb); else order=(lb tfs); fi
	log "repetition $rep/$REPS (first: $(kind "${order[0]}"))"
	for fs in tfs lb; do rm -rf "$(store "$fs")"; done
	find "$DATASET/sessions" -type f -print0 | xargs -0 cat >/dev/null # source in page cache for both
	settle
	for fs in "${order[@]}"; do start_fs "$fs"; done

	each ph_ingest "${order[@]}"
	settle
	for fs in "${order[@]}"; do
		remount_cold "$fs" && { ph_list "$fs" list_cold || log "list $(kind "$fs") failed"; }
	done
	for fs in "${order[@]}"; do up "$fs" && ph_list "$fs" list_warm; done
	each ph_hit_rate "${order[@]}"
	for fs in "${order[@]}"; do
		remount_cold "$fs" && { ph_read_all "$fs" || log "read-all $(kind "$fs") failed"; }
	done
	each ph_search "${order[@]}"
	settle
	for s in 0 1; do
		for fs in "${order[@]}"; do up "$fs" && { ph_fsmark "$fs" "$s" || log "fsmark -S $s $(kind "$fs") failed"; }; done
	done
	for fs in "${order[@]}"; do up "$fs" && { ph_fio "$fs" write || log "fio write $(kind "$fs") n/a"; }; done
	settle
	for fs in "${order[@]}"; do
		remount_cold "$fs" && { ph_fio "$fs" read || log "fio read $(kind "$fs") n/a"; }
	done
	settle
	each ph_rm "${order[@]}"
	each ph_gc "${order[@]}"
	for fs in "${order[@]}"; do stop_fs "$fs"; done
	for fs in tfs lb; do
		((${HWM[$fs]:-0} > 0)) && rec rss "$fs" "$(calc "${HWM[$fs]} / 1024" 0)"
		HWM[$fs]=0
	done
done

# ---------------------------------------------------------------- report

median() {
	[[ -s $1 ]] || { echo n/a; return; }
	sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# metric|label|unit|better (lower, higher, or - for no ratio)|scale
ROWS=(
	"ingest|ingest: cp -r + sync|s|lower|1"
	"list_cold|list sessions + read every metadata.json, cold|ms|lower|1"
	"list_warm|list sessions + read every metadata.json, warm|ms|lower|1"
	"read_all|read everything, cold|MiB/s|higher|1"
	"search|search: ls search/$QUERY vs grep -rl $QUERY|ms|lower|1"
	"hits|search results (sessions vs files; $EXPECTED_HITS sessions planted)|count|-|1"
	"fsmark0|fs_mark 4 KiB x 2 threads, -S 0|files/s|higher|1"
	"fsmark1|fs_mark 4 KiB x 2 threads, -S 1 (fsync)|files/s|higher|1"
	"fio_write|fio sequential write ${FIO_MB} MiB, bs=1M, end_fsync|MiB/s|higher|1"
	"fio_read|fio sequential read ${FIO_MB} MiB, bs=1M, cold|MiB/s|higher|1"
	"rm|rm -rf sessions + sync|s|lower|1"
	"gc|taskerfs gc after rm|s|-|1"
	"stored|stored bytes after ingest (du of backing store)|MB|lower|1e-6"
	"stored_blobs|stored blob bytes after ingest (taskerfs stats)|MB|-|1e-6"
	"stored_after|stored bytes after rm + gc|MB|lower|1e-6"
	"hit_rate|cache hit rate, cold + warm metadata listing|%|-|1"
	"rss|daemon peak RSS (VmHWM)|MB|lower|1"
)

fmt_num() {
	[[ $1 == n/a ]] && { echo n/a; return; }
	awk -v v="$1" -v s="$2" 'BEGIN { x = v * s
		if (x >= 100 || x == int(x)) printf "%.0f", x; else if (x >= 10) printf "%.1f", x
		else if (x >= 0.1) printf "%.2f", x; else printf "%.2g", x }'
}

report() {
	local cpu commit
	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
	echo "taskerfs ($A_KIND) vs go-fuse loopback, $(date -u +%Y-%m-%dT%H:%MZ), commit $commit"
	echo "machine: $(nproc) x ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), $(findmnt -no FSTYPE,SOURCE --target "$FSDIR" | tr -s ' ')"
	echo "backing stores: $FS_NOTE; medians of $REPS interleaved repetitions"
	echo "dataset: taskerfs gen --sessions $SESSIONS --screenshots $SHOTS --audio $AUDIO --dup $DUP --seed $SEED: $FILES files, $(calc "$LOGICAL / 1e6" 1) MB logical"
	echo
	echo "| workload | unit | taskerfs | loopback | ratio | better |"
	echo "| --- | --- | ---: | ---: | ---: | --- |"
	local row metric label unit better scale a b ratio
	for row in "${ROWS[@]}"; do
		IFS='|' read -r metric label unit better scale <<<"$row"
		a=$(median "$RES/$metric.tfs") b=$(median "$RES/$metric.lb")
		ratio=-
		if [[ $better != - && $a != n/a && $b != n/a ]] && awk -v b="$b" 'BEGIN { exit !(b != 0) }'; then
			ratio=$(fmt_num "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')" 1)
		fi
		echo "| $label | $unit | $(fmt_num "$a" "$scale") | $(fmt_num "$b" "$scale") | $ratio | $better |"
	done
	echo
	echo "ratio = taskerfs / loopback. Cold = after unmount, remount and drop_caches."
	echo "taskerfs ingest waits for its write-back queue to drain (sync(2) does not reach a FUSE daemon)."
}

OUT=$WORK/results-$(date -u +%Y%m%dT%H%M%SZ).md
report | tee "$OUT"
log "table saved to $OUT; raw samples in $RES"
exit
}
