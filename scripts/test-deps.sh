#!/usr/bin/env bash
# Installs what the tests run, when it is missing: Debian packages (as root,
# with apt) and the S3 test server (Versity S3 Gateway, built once with
# `go install`; the Go build cache keeps it). Cheap when everything is
# there. Called by `make test` and therefore by .ci/run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PATH=$PATH:/usr/local/go/bin
# Every tool a test in tests/ runs (they fail under CI=true when one is
# missing): fuse3 (fusermount3, mount.fuse3), attr (getfattr, setfattr),
# util-linux and mount (unshare, setpriv, mount), passwd (useradd), vim.
need=()
for pkg in fuse3 rsync attr sqlite3 git fio tar coreutils sed util-linux mount passwd vim; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
	if ((EUID == 0)); then
		apt-get update -qq
		apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "test-deps: missing packages (install as root): ${need[*]}" >&2
	fi
fi
# The S3 tests start a real S3 server themselves; they find it through
# $TASKERFS_VERSITYGW, PATH or $(go env GOPATH)/bin.
gobin=$(go env GOBIN)
gw="${gobin:-$(go env GOPATH)/bin}/versitygw"
if [[ -z ${TASKERFS_VERSITYGW:-} ]] && ! command -v versitygw >/dev/null && [[ ! -x $gw ]]; then
	# GOFLAGS may carry -mod= settings meant for this module: not for that one.
	GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
