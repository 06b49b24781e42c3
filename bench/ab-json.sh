#!/usr/bin/env bash
# bench/ab-json.sh: A/B of taskerfs builds on a JSON-only tree: `cp -r` of N
# sessions (taskerfs gen --json-only) into a fresh mount + `taskerfs sync`,
# then `rm -rf` of the tree + `taskerfs sync`, with the daemon's CPU for
# each; go-fuse's example/loopback as nobody (no passthrough, `sync` after
# each step) goes first in every round. Rounds interleave the builds.
#
#   bench/ab-json.sh REPS LOOPBACK TASKERFS... [-- N]
#
# Work files live in /var/tmp/taskerfs-abjson. /dev/fuse is made 0666 for
# the run and restored on exit. Prints one line per mount and round: ms of
# wall time for ingest and rm, and the daemon's CPU ticks (1/100 s) for each.
set -uo pipefail
W=/var/tmp/taskerfs-abjson REPS=$1 LB=$2; shift 2
BINS=() N=2000
while (($#)); do
	if [[ $1 == -- ]]; then N=$2; break; fi
	BINS+=("$(realpath "$1")"); shift
done
mkdir -p "$W"
if [[ ! -d $W/src-$N ]]; then
	"${BINS[0]}" gen --sessions "$N" --json-only "$W/src-$N" >/dev/null && chmod -R a+rX "$W/src-$N"
fi
SRC=$W/src-$N
now() { date +%s%N; }
mode=$(stat -c %a /dev/fuse); chmod 666 /dev/fuse; trap 'chmod "$mode" /dev/fuse' EXIT
NB="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= REPS; r++)); do
	rm -rf "$W/lb-d" "$W/lb-m"; mkdir -p "$W/lb-d" "$W/lb-m"; chown nobody:nogroup "$W/lb-d" "$W/lb-m"
	$NB "$LB" -q "$W/lb-m" "$W/lb-d" >/dev/null 2>&1 &
	sleep 0.5; sync
	t0=$(now); $NB cp -r "$SRC/sessions" "$W/lb-m/"; sync; t1=$(now)
	$NB rm -rf "$W/lb-m/sessions"; sync; t2=$(now)
	echo "loopback ingest $(((t1 - t0) / 1000000)) rm $(((t2 - t1) / 1000000))"
	fusermount3 -u "$W/lb-m"
	for B in "${BINS[@]}"; do
		rm -rf "$W/d" "$W/m"; mkdir -p "$W/d" "$W/m"
		"$B" mount --data "$W/d" "$W/m" --background --trash-days 0 >/dev/null
		PID=$(cat "$W/d/taskerfs.pid"); sync
		t0=$(now); cp -r "$SRC/sessions" "$W/m/"; "$B" sync --data "$W/d"; t1=$(now)
		c1=$(awk '{print $14+$15}' "/proc/$PID/stat")
		rm -rf "$W/m/sessions"; "$B" sync --data "$W/d"; t2=$(now)
		c2=$(awk '{print $14+$15}' "/proc/$PID/stat")
		echo "$B ingest $(((t1 - t0) / 1000000)) rm $(((t2 - t1) / 1000000)) cpu $c1 $((c2 - c1))"
		"$B" umount "$W/m"
	done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
