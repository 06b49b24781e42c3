#!/usr/bin/env bash
# bench/scale.sh: the figures of issue 14 (search and index at scale).
#
#   bench/scale.sh [SESSIONS] [--mount]
#
# 1. bench/scale (in process): generates SESSIONS JSON-only sessions
#    (default 10000) with planted words, indexes them in group-commit sized
#    batches, and prints the index size per key table against the indexed
#    JSON bytes, the indexing rate, p50/p95 of every query kind of the issue
#    (listing, top 100 with snippets, facet dirs) and a 1M-session projection
#    from the per-session costs.
# 2. with --mount, bench/search too: the same kind of dataset copied into a
#    taskerfs mount with cp -r (ingest rate), and `ls search/<q>` through
#    FUSE against grep on go-fuse's loopback, interleaved.
# 3. with --all, the rest of the issue's table after 2.: bench/ingest.sh
#    (cp -r of INGEST_SESSIONS, default 2000, into taskerfs and into
#    unprivileged loopback, interleaved: the ratio) and bench/verbs.sh
#    SESSIONS --import (ingest with the daemon's peak RSS, fsck, reindex,
#    import of legacy sessions).
# Work files live in ${WORK:-/var/tmp/taskerfs-scale}; datasets are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
work=${WORK:-/var/tmp/taskerfs-scale}
mkdir -p "$work" bin
go build -o bin/taskerfs-scale ./bench/scale
bin/taskerfs-scale -sessions "$n" -work "$work"
if [[ "${2:-}" == "--mount" || "${2:-}" == "--all" ]]; then
	go build -o bin/taskerfs ./cmd/taskerfs
	go build -o bin/loopback github.com/hanwen/go-fuse/v2/example/loopback
	go run ./bench/search -taskerfs bin/taskerfs -loopback bin/loopback -sizes "$n" -work "$work/search"
fi
if [[ "${2:-}" == "--all" ]]; then
	bench/ingest.sh "${INGEST_SESSIONS:-2000}" --work "$work/ingest"
	bench/verbs.sh "$n" --import --work "$work/verbs"
fi
