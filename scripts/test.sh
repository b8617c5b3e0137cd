#!/usr/bin/env bash
# test.sh [--no-lane] runs the whole test suite against the real parts: it
# installs and starts them (scripts/setup.sh), checks formatting and vet,
# runs every test with the race detector as root on this host, then runs
# the kernel lane (scripts/kernel-lane.sh): the tests whose behaviour
# depends on the kernel or the cgroup version, in a Debian 12 VM with the
# stock kernel (cgroup v2, systemd cgroup driver, 802.1Q, Open vSwitch's
# kernel datapath). CI runs exactly this, lane included.
#
# --no-lane (or DOCKERVISOR_NO_LANE=1) leaves the lane out, for quick local
# runs. It fails when the host suite or the lane fails; both run either way.
set -euo pipefail
cd "$(dirname "$0")/.."

lane=1
[ "${DOCKERVISOR_NO_LANE:-}" != 1 ] || lane=0
for a in "$@"; do
	case $a in
	--no-lane) lane=0 ;;
	*) echo "test.sh: unknown argument $a (usage: test.sh [--no-lane])" >&2; exit 2 ;;
	esac
done

bash scripts/setup.sh

export PATH="$PATH:/usr/local/go/bin"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# The contract packages and the Docker backend build on every OS: a
# developer on a Mac drives a remote engine with them.
GOOS=darwin go build ./hypervisor/... ./image/... ./network/... ./stats/...
rc=0
go test -race -count=1 -timeout 30m ./... || rc=$?
if [ "$lane" = 1 ]; then
	bash scripts/kernel-lane.sh || rc=1
else
	echo "test.sh: the kernel lane was left out (--no-lane)" >&2
fi
exit "$rc"
