#!/usr/bin/env bash
# bench/run.sh: run the same workload on a taskerfs mount and on two go-fuse
# loopback mounts over the same disk, interleaved phase by phase, and print
# one markdown table of medians with taskerfs' ratio to each loopback.
#
# The two peers are the same go-fuse example/loopback binary:
#   loopback (passthrough)     started as root: it opens files with
#                              FOPEN_PASSTHROUGH, so the kernel reads and
#                              writes the backing file itself and the daemon
#                              never sees the data
#   loopback (no passthrough)  started as an unprivileged user (--user, default
#                              nobody): the kernel refuses it passthrough, so
#                              every read and write goes through the daemon,
#                              as it does for taskerfs
# For the second, /dev/fuse is made 0666 for the run and its mode restored on
# exit (also on failure or Ctrl-C); that user runs the workload on its mount
# (a FUSE mount without allow_other admits only its owner). Every workload
# command, on every mount, goes through the same setpriv wrapper so that the
# wrapper's cost is the same for all of them.
#
# A third peer explains part of what is left between the two: loopback
# (no passthrough) mounted with default_permissions (bench/loopbackperm, same
# user), as taskerfs always is. The kernel then checks every access against
# the modes the daemon reports, and every create, unlink, rename or mkdir
# costs a GETATTR of the directory on the next path walk through it, which
# the plain peer never pays. Ratios to both are printed; the fair peer stays
# the plain one.
#
# A fourth column is taskerfs with its blobs in S3 (--blobs s3://...) on a
# local Versity S3 Gateway (versitygw, `go install
# github.com/versity/versitygw/cmd/versitygw@v1.8.0`; $TASKERFS_VERSITYGW or
# GOPATH/bin) whose root is on the same backing filesystem; without the
# binary that column is n/a. Its cold remounts also empty the local read
# cache, so cold reads come from the server; its stored bytes are the data
# dir plus the bucket.
#
#   bench/run.sh [--quick] [--reps N] [--work DIR] [--user NAME] [--no-fresh-fs] [--keep] [--profile]
#
# --quick        small dataset and small fio/fs_mark/closelat sizes (under a minute)
# --reps N       repetitions (default 3); medians are over them
# --work DIR     work dir (default /var/tmp/taskerfs-bench); binaries, dataset,
#                backing stores, mount points, logs and results live there
# --user NAME    unprivileged user for the no-passthrough loopback (default nobody)
# --no-fresh-fs  keep the backing stores in DIR itself instead of on a fresh
#                journaled ext4 image loop-mounted under DIR (see DESIGN.md,
#                "Measuring on these machines")
# --keep         keep the backing stores and the ext4 image afterwards
# --profile      take a CPU profile of the taskerfs daemon over every phase,
#                saved as DIR/profiles/PHASE.repN.pprof (go tool pprof)
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
QUICK=0 REPS="" WORK=/var/tmp/taskerfs-bench FRESH_FS=1 KEEP=0 A_KIND=taskerfs NP_USER=nobody PROFILE=0
while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--reps) REPS=$2; shift ;;
	--work) WORK=$2; shift ;;
	--user) NP_USER=$2; shift ;;
	--no-fresh-fs) FRESH_FS=0 ;;
	--keep) KEEP=1 ;;
	--profile) PROFILE=1 ;;
	--self-test) A_KIND=loopback ;;
	-h | --help) awk 'NR > 1 && /^# The whole script/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if ((QUICK)); then
	SESSIONS=30 SHOTS=6 AUDIO=6 FIO_MB=16 FSMARK_N=100 CLOSELAT_N=30 TREE_N=500 SETTLE=0
	FSX_N=20000 FSX_LONG_N=20000
else
	SESSIONS=1000 SHOTS=10 AUDIO=10 FIO_MB=1024 FSMARK_N=5000 CLOSELAT_N=300 TREE_N=10000 SETTLE=2
	FSX_N=20000 FSX_LONG_N=1000000
fi
REPS=${REPS:-3}
DUP=0.4 SEED=1 QUERY=zanzibar QUERY_SHARE=0.05 CLOSELAT_KIB=200

WORK=$(realpath -m "$WORK")
BIN=$WORK/bin LOGS=$WORK/logs RES=$WORK/results PROFS=$WORK/profiles
FSDIR=$WORK/fs IMG=$WORK/fs.img
FSES=(tfs lb np dp s3)
declare -A MNT=([tfs]=$WORK/mnt/taskerfs [lb]=$WORK/mnt/loopback [np]=$WORK/mnt/loopback-np [dp]=$WORK/mnt/loopback-perm [s3]=$WORK/mnt/taskerfs-s3)
declare -A STORE=([tfs]=$FSDIR/taskerfs-data [lb]=$FSDIR/loopback-orig [np]=$FSDIR/loopback-np-orig [dp]=$FSDIR/loopback-perm-orig [s3]=$FSDIR/taskerfs-s3-data)
declare -A KIND=([tfs]=$A_KIND [lb]=loopback [np]=loopback-np [dp]=loopback-perm [s3]=taskerfs-s3)
# Whose ids the daemon and the workload run with; np's and dp's are filled in below.
declare -A RUID=([tfs]=0 [lb]=0 [np]= [dp]=) RGID=([tfs]=0 [lb]=0 [np]= [dp]=)
RUID[s3]=0 RGID[s3]=0
# The S3 server of the s3 column.
S3_ROOT=$FSDIR/s3-server S3_BUCKET=taskerfs-bench S3_PID="" S3_OK=0 S3_ENDPOINT=""
export AWS_ACCESS_KEY_ID=taskerfs-bench AWS_SECRET_ACCESS_KEY=taskerfs-bench-secret
declare -A PID=() UP=() HWM=()
NP_OK=0 FUSE_MODE=""
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup

cleanup() {
	local fs m
	for fs in "${FSES[@]}"; do
		m=${MNT[$fs]}
		if mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
		if [[ -n ${PID[$fs]:-} ]] && kill -0 "${PID[$fs]}" 2>/dev/null; then
			kill "${PID[$fs]}" 2>/dev/null
			wait "${PID[$fs]}" 2>/dev/null
		fi
	done
	if [[ -n $S3_PID ]]; then
		kill "$S3_PID" 2>/dev/null
		wait "$S3_PID" 2>/dev/null
	fi
	if [[ -n $FUSE_MODE ]]; then
		chmod "$FUSE_MODE" /dev/fuse && log "/dev/fuse mode restored to $FUSE_MODE"
	fi
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

is_taskerfs() { [[ ${KIND[$1]} == taskerfs* ]]; }

# as FS CMD... runs CMD with the ids that FS's workload runs with.
as() {
	local fs=$1
	shift
	setpriv --reuid="${RUID[$fs]}" --regid="${RGID[$fs]}" --clear-groups -- "$@"
}

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
	f=${MNT[$1]}/.taskerfs/stats.json
	[[ -r $f ]] || return 1
	tr -d '\0' <"$f" | grep -o "\"$2\": *[-0-9.eE+]*" | head -1 | sed 's/.*: *//'
}

# drained waits until taskerfs' write-back queue is empty, then syncs the
# disk: sync(2) does not reach a FUSE daemon, so the kernel's sync alone
# does not mean the daemon has written everything.
drained() {
	local fs=$1 i f pending
	is_taskerfs "$fs" || return 0
	f=${MNT[$fs]}/.taskerfs/stats.json
	for ((i = 0; i < 600; i++)); do
		[[ -r $f ]] || break
		pending=$(tr -d '\0' <"$f" | grep -oE '"(queueCritical|queueNormal|queueLow|dirtyBytes)": *[0-9]+' |
			awk -F': *' '{ s += $2 } END { print s + 0 }')
		((pending == 0)) && break
		sleep 0.05
	done
	sync
}

# durable FS: sync, and for taskerfs first wait for its queue (drained).
durable() { if is_taskerfs "$1"; then drained "$1"; else sync; fi; }

# The trash is off on the taskerfs mounts: with it (the default, one day)
# every rm of the workload stays on disk as undo, which the space rows
# would count; loopback keeps nothing either.
TFS_ARGS=(--trash-days 0)

start_fs() {
	local fs=$1 m=${MNT[$1]} s=${STORE[$1]} i
	if { [[ $fs == np || $fs == dp ]] && ((!NP_OK)); } || { [[ $fs == s3 ]] && ((!S3_OK)); }; then
		UP[$fs]=0
		return 1
	fi
	mounted "$m" && fusermount3 -uz "$m" # left over by a crashed run
	mkdir -p "$m" "$s"
	chown "${RUID[$fs]}:${RGID[$fs]}" "$m" "$s"
	if [[ $fs == s3 ]]; then
		"$BIN/taskerfs" mount --data "$s" "${TFS_ARGS[@]}" --blobs "s3://$S3_BUCKET/bench" --s3-endpoint "$S3_ENDPOINT" "$m" >>"$LOGS/$fs.log" 2>&1 &
	elif is_taskerfs "$fs"; then
		"$BIN/taskerfs" mount --data "$s" "${TFS_ARGS[@]}" "$m" >>"$LOGS/$fs.log" 2>&1 &
	else
		# setpriv itself, not the as function: $! must be the daemon (setpriv
		# execs it), not a subshell, for its RSS and for stopping it.
		local lbin=$BIN/loopback
		[[ $fs == dp ]] && lbin=$BIN/loopbackperm
		setpriv --reuid="${RUID[$fs]}" --regid="${RGID[$fs]}" --clear-groups -- \
			"$lbin" -q "$m" "$s" >>"$LOGS/$fs.log" 2>&1 &
	fi
	PID[$fs]=$!
	for ((i = 0; i < 1500; i++)); do
		if as "$fs" mountpoint -q "$m"; then
			UP[$fs]=1
			return 0
		fi
		kill -0 "${PID[$fs]}" 2>/dev/null || break
		sleep 0.02
	done
	log "${KIND[$fs]} did not mount; see $LOGS/$fs.log"
	UP[$fs]=0
	return 1
}

stop_fs() {
	local fs=$1 m=${MNT[$1]} pid=${PID[$1]:-} i hwm
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
	for ((i = 0; i < 3000; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "${KIND[$fs]} daemon $pid did not exit after unmount; killing it"
		kill "$pid"
	fi
	wait "$pid" 2>/dev/null
	mounted "$m" && fusermount3 -uz "$m"
	PID[$fs]="" UP[$fs]=0
}

# remount_cold FS: fresh daemon, empty kernel caches (and, for S3 blobs, an
# empty local read cache: blobs not still staged come from the server).
remount_cold() {
	stop_fs "$1"
	[[ $1 == s3 ]] && rm -rf "${STORE[$1]}/s3cache"
	drop_caches
	start_fs "$1"
}

up() { [[ ${UP[$1]:-0} == 1 ]]; }

# store_bytes FS: bytes its backing store uses (for S3 blobs: the data dir
# plus the bucket, once the uploads have drained).
store_bytes() {
	local fs=$1
	if [[ $fs == s3 ]]; then
		s3_uploaded
		du -sB1 -c "${STORE[$fs]}" "$S3_ROOT/$S3_BUCKET" 2>/dev/null | tail -1 | cut -f1
	else
		du -sB1 "${STORE[$fs]}" | cut -f1
	fi
}

# prof_start FS and prof_stop FS NAME bracket one phase with a CPU profile
# of taskerfs' daemon (--profile), taken through its control socket.
prof_start() {
	((PROFILE)) && is_taskerfs "$1" || return 0
	curl -sf -X POST --unix-socket "${STORE[$1]}/control.sock" http://taskerfs/debug/cpuprofile/start >/dev/null 2>&1 ||
		log "no CPU profile from ${KIND[$1]} (needs a build with /debug/cpuprofile)"
}
prof_stop() {
	((PROFILE)) && is_taskerfs "$1" || return 0
	local out=$PROFS/$2.rep$rep.pprof
	[[ $1 == s3 ]] && out=$PROFS/$2.s3.rep$rep.pprof
	curl -sf -X POST --unix-socket "${STORE[$1]}/control.sock" http://taskerfs/debug/cpuprofile/stop -o "$out" 2>/dev/null ||
		rm -f "$out"
}

# note_rss FS NAME: after a phase, the daemon's high-water mark so far
# (VmHWM, reset by every remount) to $RES/rss_phases.FS, so that the phase
# that set a repetition's peak RSS can be named.
note_rss() {
	local fs=$1 pid=${PID[$1]:-} hwm
	is_taskerfs "$fs" && [[ -n $pid ]] || return 0
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	[[ -n $hwm ]] && echo "rep $rep $2 $((hwm / 1024)) MB" >>"$RES/rss_phases.$fs"
	return 0
}

# cold PHASE FS ARGS...: PHASE on a freshly remounted FS with empty kernel
# caches.
cold() {
	local phase=$1 fs=$2
	shift 2
	remount_cold "$fs" || return 0
	prof_start "$fs"
	"$phase" "$fs" "$@" || log "${phase#ph_} $* ${KIND[$fs]}: failed, its figure is n/a"
	prof_stop "$fs" "${phase#ph_}${*:+-${*// /-}}-cold"
	note_rss "$fs" "${phase#ph_}${*:+-${*// /-}}-cold"
	uploads_drained "$fs"
}

# uploads_drained FS: for the S3 column, wait (untimed) until the blobs a
# phase staged are uploaded. The uploads run in the background after the
# phase's own figure is taken; left running, they most likely loaded the
# disk under the next column's phase (in one run, fio write on taskerfs
# right after the S3 column's ran at 57-66 MiB/s, 380 when it went first).
uploads_drained() {
	[[ $1 == s3 ]] && up s3 || return 0
	s3_uploaded
	settle
}

# s3_uploaded waits (at most two minutes) until the S3 column has nothing
# staged that is not uploaded yet.
s3_uploaded() {
	local i j n
	for ((i = 0; i < 1200; i++)); do
		# journalPending first: a blob leaves the journal only once staged.
		j=$(stat_field s3 journalPending) || break
		n=$(stat_field s3 pendingUploads) || break
		((j == 0 && n == 0)) && break
		sleep 0.1
	done
}

# ---------------------------------------------------------------- phases

# Run by `as FS bash -c`, hence exported.
copy_in() { cp -r "$1/sessions" "$2/" && sync; }
list_meta() { (cd "$1/sessions" && ls -1 | awk '{ print $0 "/metadata.json" }' | xargs -d '\n' cat >/dev/null); }
read_all() { find "$1/sessions" -type f -print0 | xargs -0 cat >/dev/null; }
tar_out() { tar -cf - -C "$1" tree | cat >/dev/null; } # -f /dev/null would let tar skip the reads
export -f copy_in list_meta read_all tar_out

ph_ingest() {
	local fs=$1 stored
	timed as "$fs" bash -c 'copy_in "$1" "$2"' _ "$DATASET" "${MNT[$fs]}" || return 1
	local t1=$T
	timed drained "$fs"
	rec ingest "$fs" "$(calc "($t1 + $T) / 1e6")"
	stored=$(store_bytes "$fs")
	rec stored "$fs" "$stored"
	rec stored_ratio "$fs" "$(calc "$stored / $LOGICAL" 4)"
	local blobs
	if is_taskerfs "$fs" && blobs=$(stat_field "$fs" storedBytes); then rec stored_blobs "$fs" "$blobs"; fi
	return 0
}

ph_list() {
	local fs=$1 metric=$2
	timed as "$fs" bash -c 'list_meta "$1"' _ "${MNT[$fs]}" && rec "$metric" "$fs" "$(calc "$T / 1e3" 1)"
}

ph_read_all() {
	local fs=$1
	timed as "$fs" bash -c 'read_all "$1"' _ "${MNT[$fs]}" && rec read_all "$fs" "$(calc "$LOGICAL / 1048576 / ($T / 1e6)" 0)"
}

ph_search() {
	local fs=$1 m=${MNT[$1]} out=$WORK/search.out
	if is_taskerfs "$fs"; then
		[[ -d $m/search ]] || return 1
		timed as "$fs" ls "$m/search/$QUERY" >"$out" 2>/dev/null || return 1
	else
		timed as "$fs" grep -rl "$QUERY" "$m/sessions" >"$out"
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
	local fs=$1 sync=$2 m=${MNT[$1]} out
	as "$fs" mkdir -p "$m/bench" || return 1
	out=$(as "$fs" "$BIN/fsmark" -n "$FSMARK_N" -s 4096 -t 2 -S "$sync" -d "$m/bench" 2>>"$LOGS/$fs.log") || return 1
	rec "fsmark$sync" "$fs" "$(tail -1 <<<"$out" | awk '{ print $4 }')"
	settle
}

# ph_closelat times close() (write-back queue) and fsync()+close() (the
# synchronous commit) of freshly written 200 KiB files; closelat itself
# alternates the two modes.
ph_closelat() {
	local fs=$1 m=${MNT[$1]} out
	as "$fs" mkdir -p "$m/bench" || return 1
	out=$(as "$fs" "$BIN/closelat" -d "$fs=$m/bench" -n "$CLOSELAT_N" -s $((CLOSELAT_KIB << 10)) -rounds 1 2>>"$LOGS/$fs.log") || return 1
	echo "$out" >>"$LOGS/closelat.log"
	# Columns: target mode files p50 p90 p99 max (microseconds).
	rec close_p50 "$fs" "$(awk -v t="$fs" '$1 == t && $2 == "close" { print $4 }' <<<"$out")"
	rec close_p99 "$fs" "$(awk -v t="$fs" '$1 == t && $2 == "close" { print $6 }' <<<"$out")"
	rec fsclose_p50 "$fs" "$(awk -v t="$fs" '$1 == t && $2 == "fsync+close" { print $4 }' <<<"$out")"
	rec fsclose_p99 "$fs" "$(awk -v t="$fs" '$1 == t && $2 == "fsync+close" { print $6 }' <<<"$out")"
	settle
}

ph_fio() {
	local fs=$1 rw=$2 m=${MNT[$1]}
	[[ -n $FIO ]] || return 1
	as "$fs" mkdir -p "$m/bench" || return 1
	# Reading a file the write phase did not leave would time fio's lay-out.
	[[ $rw == write ]] || as "$fs" test -f "$m/bench/fio.dat" || return 1
	timed as "$fs" fio --name="$rw" --rw="$rw" --bs=1M --size="${FIO_MB}M" --filename="$m/bench/fio.dat" \
		--end_fsync=$([[ $rw == write ]] && echo 1 || echo 0) --output-format=terse >>"$LOGS/fio.log" 2>&1 || return 1
	rec "fio_$rw" "$fs" "$(calc "$FIO_MB / ($T / 1e6)" 0)"
}

ph_rm() {
	local fs=$1 m=${MNT[$1]}
	timed as "$fs" rm -rf "$m/sessions" "$m/bench" || return 1
	local t1=$T
	timed sync
	rec rm "$fs" "$(calc "($t1 + $T) / 1e6")"
}

ph_gc() {
	local fs=$1
	drained "$fs"
	if is_taskerfs "$fs" && "$BIN/taskerfs" gc --help >/dev/null 2>&1; then
		timed "$BIN/taskerfs" gc --data "${STORE[$fs]}" >>"$LOGS/$fs.log" 2>&1 || return 1
		rec gc "$fs" "$(calc "$T / 1e6")"
	fi
	sync
	rec stored_after "$fs" "$(store_bytes "$fs")"
}

# The small-file tree: TREE_N files of 4 KiB (unique bytes) in 10
# directories, from a tarball made once per work dir.
ph_untar() {
	local fs=$1 m=${MNT[$1]}
	# Root's tar (taskerfs and passthrough loopback run as root) would
	# also chown and chmod every file, which nobody's tar (the peer) does
	# not: 13.4 requests per file against 7.7. Every one does the same work.
	timed as "$fs" tar --no-same-owner --no-same-permissions -xf "$TARBALL" -C "$m" || return 1
	local t1=$T
	timed durable "$fs"
	rec untar "$fs" "$(calc "($t1 + $T) / 1e6")"
}
ph_lsr() {
	local fs=$1 m=${MNT[$1]}
	timed as "$fs" ls -lR "$m/tree" >/dev/null && rec lsr "$fs" "$(calc "$T / 1e3" 1)"
}
ph_tarc() {
	local fs=$1 m=${MNT[$1]}
	timed as "$fs" bash -c 'tar_out "$1"' _ "$m" && rec tarc "$fs" "$(calc "$T / 1e3" 1)"
}
ph_rmtree() {
	local fs=$1 m=${MNT[$1]}
	timed as "$fs" rm -rf "$m/tree" || return 1
	local t1=$T
	timed durable "$fs"
	rec rmtree "$fs" "$(calc "($t1 + $T) / 1e6")"
}

# ph_fsx FS: FSX_N operations of the fsx exerciser (bench/fsx: random reads,
# writes, truncates, mapped reads/writes, fallocate on one file of at most
# 256 KiB, every read checked) in ops/s; the same seed on every FS.
# ph_fsx FS space: FSX_LONG_N operations on one file, then no command at all:
# the store size once the daemon's background gc has had its turn
# (--gc-interval 20s, --gc-grace 30s by default), i.e. after at least
# FSX_GC_MIN seconds and then when du stays put for three polls (at most
# FSX_GC_MAX seconds). Recorded as the store size and as its growth over the
# size before the run. A data mismatch fails the phase (fsx.log has the op log).
FSX_GC_MIN=75 FSX_GC_MAX=300
ph_fsx() {
	local fs=$1 what=${2:-} m=${MNT[$1]} out before after i last same
	as "$fs" mkdir -p "$m/bench" || return 1
	if [[ $what != space ]]; then
		out=$(as "$fs" "$BIN/fsx" -n "$FSX_N" -seed "$((SEED * 1000 + rep))" -json "$m/bench/fsx.dat" 2>>"$LOGS/fsx.log") || {
			log "fsx on ${KIND[$fs]} failed; see $LOGS/fsx.log"
			return 1
		}
		echo "$fs $out" >>"$LOGS/fsx.log"
		rec fsx "$fs" "$(grep -oE '"ops_per_sec": *[0-9.eE+]+' <<<"$out" | sed 's/.*: *//')"
		as "$fs" rm -f "$m/bench/fsx.dat"
		settle
		return 0
	fi
	durable "$fs"
	before=$(store_bytes "$fs")
	as "$fs" "$BIN/fsx" -n "$FSX_LONG_N" -seed "$((SEED * 1000 + rep))" -json "$m/bench/fsx-long.dat" >>"$LOGS/fsx.log" 2>&1 || {
		log "fsx $FSX_LONG_N ops on ${KIND[$fs]} failed; see $LOGS/fsx.log"
		return 1
	}
	durable "$fs"
	last=-1 same=0
	for ((i = 0; i <= FSX_GC_MAX; i += 5)); do
		after=$(store_bytes "$fs")
		if ((after == last)); then ((same++)); else same=0; fi
		last=$after
		((i >= FSX_GC_MIN && same >= 3)) && break
		sleep 5
	done
	log "fsx $FSX_LONG_N ops on ${KIND[$fs]}: store $before -> $after bytes after ${i}s"
	rec fsx_store "$fs" "$after"
	rec fsx_growth "$fs" "$((after - before))"
}

# each PHASE ARGS -- FS... runs PHASE FS ARGS for every FS that is mounted,
# in the given order.
each() {
	local phase=$1 args=() fs
	shift
	while (($#)) && [[ $1 != -- ]]; do args+=("$1"); shift; done
	shift
	for fs in "$@"; do
		up "$fs" || continue
		prof_start "$fs"
		"$phase" "$fs" "${args[@]}" || log "$phase ${args[*]} ${KIND[$fs]}: failed, its figure is n/a"
		prof_stop "$fs" "${phase#ph_}${args[*]:+-${args[*]// /-}}"
		note_rss "$fs" "${phase#ph_}${args[*]:+-${args[*]// /-}}"
		uploads_drained "$fs"
	done
}

# ---------------------------------------------------------------- set-up

mkdir -p "$BIN" "$LOGS" "$WORK/mnt"
((!PROFILE)) || { rm -rf "$PROFS" && mkdir -p "$PROFS"; }
rm -rf "$RES" && mkdir -p "$RES"
for f in tfs lb np dp s3 s3-server fio closelat fsx; do : >"$LOGS/$f.log"; done

log "building taskerfs, loopback, loopbackperm, fsmark, closelat and fsx"
# What was built: the commit, and the uncommitted changes the build included
# (saved as a patch next to the results).
COMMIT=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$REPO" && git status --porcelain --untracked-files=no 2>/dev/null | awk '{ print $NF }' | paste -sd ' ')
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
[[ -z $DIRTY ]] || (cd "$REPO" && git diff HEAD >"$WORK/build-$STAMP.diff" 2>/dev/null)
(cd "$REPO" &&
	go build -o "$BIN/taskerfs" ./cmd/taskerfs &&
	go build -o "$BIN/fsmark" ./bench/fsmark &&
	go build -o "$BIN/closelat" ./bench/closelat &&
	go build -o "$BIN/fsx" ./bench/fsx &&
	go build -o "$BIN/loopbackperm" ./bench/loopbackperm &&
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
TARBALL=$WORK/tree-$TREE_N.tar
if [[ ! -f $TARBALL ]]; then
	log "making the small-file tarball ($TREE_N x 4 KiB)"
	rm -rf "$WORK/tree-src" && mkdir -p "$WORK/tree-src" &&
		"$BIN/fsmark" -n $((TREE_N / 10)) -s 4096 -t 10 -S 0 -k -d "$WORK/tree-src" >/dev/null &&
		mv "$WORK/tree-src"/fsmark-* "$WORK/tree-src/tree" &&
		tar -cf "$TARBALL.tmp" -C "$WORK/tree-src" tree && mv "$TARBALL.tmp" "$TARBALL" || die "cannot make $TARBALL"
	rm -rf "$WORK/tree-src"
	chmod 644 "$TARBALL"
fi
LOGICAL=$(du -sb --apparent-size "$DATASET/sessions" | cut -f1)
FILES=$(find "$DATASET/sessions" -type f | wc -l)
EXPECTED_HITS=$(grep -o "\"$QUERY\"" "$DATASET/manifest.json" | wc -l)
# mfield NAME: a top-level number of the manifest (indented by two spaces;
# the per-session entries have fields of the same names).
mfield() { grep -oE "^  \"$1\": *[0-9]+" "$DATASET/manifest.json" | sed 's/.*: *//'; }
# Bytes after exact file-level deduplication: the session JSON is unique,
# attachments are counted once per distinct content.
UNIQUE=$(($(mfield Bytes) - $(mfield AttachmentBytes) + $(mfield UniqueAttachmentBytes)))

rm -rf "${STORE[@]}"
mkdir -p "$FSDIR"
if mountpoint -q "$FSDIR"; then umount "$FSDIR"; fi
FS_NOTE="plain directories under $FSDIR"
if ((FRESH_FS)); then
	# Room for five copies of the dataset and five fio files at once, and
	# the S3 column's second copy (local cache plus bucket).
	size_mb=$((LOGICAL * 7 / 1048576 + FIO_MB * 7 + 2048))
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

# The unprivileged peer: its user must reach the binaries, the dataset and
# the work dir, and open /dev/fuse; fusermount3 (setuid) mounts for it.
np_setup() {
	local fm
	RUID[np]=$(id -u "$NP_USER" 2>/dev/null) && RGID[np]=$(id -g "$NP_USER") || {
		log "no user $NP_USER"
		return 1
	}
	((RUID[np] != 0)) || { log "--user $NP_USER is root"; return 1; }
	RUID[dp]=${RUID[np]} RGID[dp]=${RGID[np]}
	fm=$(command -v fusermount3) && [[ -u $fm ]] || { log "fusermount3 missing or not setuid"; return 1; }
	as np test -x "$BIN/loopback" -a -x "$BIN/loopbackperm" -a -x "$BIN/fsmark" -a -x "$BIN/closelat" -a -w /dev/null || {
		log "$NP_USER cannot run the binaries in $BIN"
		return 1
	}
	local unreadable
	unreadable=$(as np find "$DATASET/sessions" ! -readable -print -quit) && [[ -z $unreadable ]] || {
		log "$NP_USER cannot read all of $DATASET"
		return 1
	}
	FUSE_MODE=$(stat -c %a /dev/fuse) || return 1
	if [[ $FUSE_MODE == 666 ]]; then
		FUSE_MODE="" # nothing to restore
	else
		chmod 666 /dev/fuse || { FUSE_MODE=""; return 1; }
		log "/dev/fuse mode $FUSE_MODE -> 666 for the run"
	fi
}
if np_setup; then NP_OK=1; else log "loopback (no passthrough) columns are n/a"; fi

# The S3 server for the s3 column, on the same backing filesystem.
s3_setup() {
	local vgw=${TASKERFS_VERSITYGW:-} port i
	if [[ -z $vgw ]]; then
		vgw=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
	fi
	[[ -x $vgw ]] || { log "versitygw not found (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"; return 1; }
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) || port=17070
	mkdir -p "$S3_ROOT"
	ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
		"$vgw" --port "127.0.0.1:$port" --quiet posix "$S3_ROOT" >>"$LOGS/s3-server.log" 2>&1 &
	S3_PID=$!
	S3_ENDPOINT=http://127.0.0.1:$port
	for ((i = 0; i < 500; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		kill -0 "$S3_PID" 2>/dev/null || break
		sleep 0.02
	done
	log "versitygw did not start; see $LOGS/s3-server.log"
	return 1
}
if s3_setup; then S3_OK=1; else log "taskerfs (S3 blobs) column is n/a"; fi
# A FUSE daemon's user needs to reach the mount point (and the cwd must
# not be one it cannot enter).
cd "$WORK" || die "cannot enter $WORK"

# ---------------------------------------------------------------- the run

for ((rep = 1; rep <= REPS; rep++)); do
	# Rotate who goes first (A,B,C then B,C,A ...) so that none always
	# runs first or last.
	k=$(((rep - 1) % ${#FSES[@]}))
	order=("${FSES[@]:k}" "${FSES[@]:0:k}")
	log "repetition $rep/$REPS (order: $(for fs in "${order[@]}"; do printf '%s ' "${KIND[$fs]}"; done))"
	rm -rf "${STORE[@]}" "$S3_ROOT/$S3_BUCKET"
	find "$DATASET/sessions" -type f -print0 | xargs -0 cat >/dev/null # source in page cache for all
	settle
	for fs in "${order[@]}"; do start_fs "$fs"; done

	each ph_ingest -- "${order[@]}"
	settle
	for fs in "${order[@]}"; do cold ph_list "$fs" list_cold; done
	each ph_list list_warm -- "${order[@]}"
	each ph_hit_rate -- "${order[@]}"
	for fs in "${order[@]}"; do cold ph_read_all "$fs"; done
	each ph_search -- "${order[@]}"
	settle
	each ph_untar -- "${order[@]}"
	settle
	for fs in "${order[@]}"; do cold ph_lsr "$fs"; done
	for fs in "${order[@]}"; do cold ph_tarc "$fs"; done
	each ph_rmtree -- "${order[@]}"
	settle
	each ph_fsmark 0 -- "${order[@]}"
	each ph_fsmark 1 -- "${order[@]}"
	each ph_closelat -- "${order[@]}"
	each ph_fio write -- "${order[@]}"
	settle
	for fs in "${order[@]}"; do cold ph_fio "$fs" read; done
	settle
	each ph_rm -- "${order[@]}"
	each ph_gc -- "${order[@]}"
	each ph_fsx -- "${order[@]}"
	each ph_fsx space -- tfs
	for fs in "${order[@]}"; do stop_fs "$fs"; done
	for fs in "${FSES[@]}"; do
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
	"untar|untar $TREE_N x 4 KiB files (unique bytes) + durable|s|lower|1"
	"lsr|ls -lR of that tree, cold|ms|lower|1"
	"tarc|tar -c of that tree, cold|ms|lower|1"
	"rmtree|rm -rf of that tree + durable|s|lower|1"
	"fsmark0|fs_mark -n $FSMARK_N -s 4096 -t 2 -S 0|files/s|higher|1"
	"fsmark1|fs_mark -n $FSMARK_N -s 4096 -t 2 -S 1 (fsync)|files/s|higher|1"
	"close_p50|close() of a fresh $CLOSELAT_KIB KiB file, p50|µs|lower|1"
	"close_p99|close() of a fresh $CLOSELAT_KIB KiB file, p99|µs|lower|1"
	"fsclose_p50|fsync()+close() of a fresh $CLOSELAT_KIB KiB file, p50 (synchronous)|µs|lower|1"
	"fsclose_p99|fsync()+close() of a fresh $CLOSELAT_KIB KiB file, p99 (synchronous)|µs|lower|1"
	"fio_write|fio sequential write ${FIO_MB} MiB, bs=1M, end_fsync|MiB/s|higher|1"
	"fio_read|fio sequential read ${FIO_MB} MiB, bs=1M, cold|MiB/s|higher|1"
	"rm|rm -rf sessions + sync|s|lower|1"
	"gc|taskerfs gc after rm|s|-|1"
	"stored|stored bytes after ingest (du of backing store)|MB|lower|1e-6"
	"stored_ratio|stored / logical bytes after ingest (dataset --dup $DUP)|%|lower|100"
	"stored_blobs|stored blob bytes after ingest (taskerfs stats)|MB|-|1e-6"
	"stored_after|stored bytes after rm + gc|MB|lower|1e-6"
	"hit_rate|cache hit rate, cold + warm metadata listing|%|-|1"
	"fsx|fsx $FSX_N ops on one file ≤ 256 KiB (read, write, truncate, mmap, fallocate), same seed|ops/s|higher|1"
	"fsx_store|store after $FSX_LONG_N fsx ops on one file + background gc, no command (after rm + gc)|MB|lower|1e-6"
	"fsx_growth|store change over those $FSX_LONG_N fsx ops (older garbage the gc reclaims meanwhile counts against it)|MB|-|1e-6"
	"rss|daemon peak RSS (VmHWM)|MB|lower|1"
)

fmt_num() {
	[[ $1 == n/a ]] && { echo n/a; return; }
	awk -v v="$1" -v s="$2" 'BEGIN { x = v * s
		if (x >= 100 || x == int(x)) printf "%.0f", x; else if (x >= 10) printf "%.1f", x
		else if (x >= 0.1) printf "%.2f", x; else printf "%.2g", x }'
}

# ratio A B prints A/B, or - when there is none.
ratio() {
	if [[ $3 != - && $1 != n/a && $2 != n/a ]] && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then
		fmt_num "$(awk -v a="$1" -v b="$2" 'BEGIN { print a / b }')" 1
	else
		echo -
	fi
}

report() {
	local cpu dirty=""
	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	[[ -n $DIRTY ]] && dirty=" plus uncommitted changes to $DIRTY (build-$STAMP.diff)"
	echo "taskerfs ($A_KIND) vs go-fuse loopback as root (passthrough) and as $NP_USER (no passthrough; and with default_permissions), $(date -u +%Y-%m-%dT%H:%MZ), built from commit $COMMIT$dirty"
	echo "machine: $(nproc) x ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), $(findmnt -no FSTYPE,SOURCE --target "$FSDIR" | tr -s ' ')"
	echo "load average (1, 5, 15 min): $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "backing stores: $FS_NOTE; medians of $REPS interleaved repetitions"
	echo "dataset: taskerfs gen --sessions $SESSIONS --screenshots $SHOTS --audio $AUDIO --dup $DUP --seed $SEED: $FILES files," \
		"$(calc "$LOGICAL / 1e6" 1) MB logical, $(calc "$UNIQUE / 1e6" 1) MB after exact file dedup" \
		"($(mfield DuplicateScreenshots) of $(mfield Screenshots) screenshots are copies; $(calc "100 - 100 * $UNIQUE / $LOGICAL" 1)% of the bytes are duplicates)"
	echo
	echo "| workload | unit | taskerfs | loopback (passthrough) | loopback (no passthrough) | ratio vs passthrough | ratio vs no passthrough | loopback (no passthrough, default_permissions) | ratio vs it | taskerfs, S3 blobs | S3 ratio vs no passthrough | better |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
	local row metric label unit better scale a b c d e
	for row in "${ROWS[@]}"; do
		IFS='|' read -r metric label unit better scale <<<"$row"
		a=$(median "$RES/$metric.tfs") b=$(median "$RES/$metric.lb") c=$(median "$RES/$metric.np") d=$(median "$RES/$metric.s3")
		e=$(median "$RES/$metric.dp")
		echo "| $label | $unit | $(fmt_num "$a" "$scale") | $(fmt_num "$b" "$scale") | $(fmt_num "$c" "$scale")" \
			"| $(ratio "$a" "$b" "$better") | $(ratio "$a" "$c" "$better") | $(fmt_num "$e" "$scale") | $(ratio "$a" "$e" "$better")" \
			"| $(fmt_num "$d" "$scale") | $(ratio "$d" "$c" "$better") | $better |"
	done
	echo
	echo "ratio = taskerfs / loopback. Cold = after unmount, remount and drop_caches."
	echo "loopback (no passthrough, default_permissions): the same peer mounted as taskerfs is, with the kernel checking every access (bench/loopbackperm); not the fair peer, it shows what that check costs."
	echo "taskerfs, S3 blobs: --blobs s3://$S3_BUCKET/bench on a local versitygw (posix backend on the same filesystem); cold also empties its read cache; stored = data dir + bucket."
	echo "taskerfs ingest waits for its write-back queue to drain (sync(2) does not reach a FUSE daemon)."
	echo "taskerfs mounts run with ${TFS_ARGS[*]} (the trash would keep every deleted byte for a day)."
	echo "Stored / logical: du -sB1 of the backing store against the apparent size of the source tree;" \
		"exact file dedup alone would give $(calc "100 * $UNIQUE / $LOGICAL" 1)%."
	local q50 q99 s50 s99
	q50=$(median "$RES/close_p50.tfs") q99=$(median "$RES/close_p99.tfs")
	s50=$(median "$RES/fsclose_p50.tfs") s99=$(median "$RES/fsclose_p99.tfs")
	echo "taskerfs close() with its write-back queue against synchronous commit (fsync()+close()):" \
		"p50 $(fmt_num "$q50" 1) vs $(fmt_num "$s50" 1) µs ($(ratio "$q50" "$s50" lower)x)," \
		"p99 $(fmt_num "$q99" 1) vs $(fmt_num "$s99" 1) µs ($(ratio "$q99" "$s99" lower)x)."
}

OUT=$WORK/results-$STAMP.md
report | tee "$OUT"
log "table saved to $OUT; raw samples in $RES"
exit
}
