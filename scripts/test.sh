#!/usr/bin/env bash
# test.sh runs the test suite.
#
#   scripts/test.sh          the whole suite against the real parts, as CI
#                            runs it: installs and starts them
#                            (scripts/setup.sh), then the checks below and
#                            every test with the race detector, as root on
#                            this host; then the kernel lane
#                            (scripts/kernel-lane.sh): the tests whose
#                            behaviour depends on the kernel or the cgroup
#                            version, in a Debian 12 VM with the stock
#                            kernel (cgroup v2, systemd cgroup driver,
#                            802.1Q, Open vSwitch's kernel datapath).
#   scripts/test.sh --no-lane  the same without the kernel lane, for quick
#                            local runs (or DOCKERVISOR_LANE=0).
#   scripts/test.sh --short  the fast tier: the same checks, then every
#                            pure-logic test (go test -short). It needs no
#                            root, no engine and no installs; tests that need
#                            a real part skip under -short.
#
# The checks: no built or oversized file is tracked, gofmt, go vet, the lint
# gate (staticcheck -checks all, zero findings), and the SDK's packages and
# their tests build for macOS and Windows. It fails when the host suite or
# the lane fails; both run either way.
set -euo pipefail
cd "$(dirname "$0")/.."

short=false
lane=1
[ "${DOCKERVISOR_LANE:-}" != 0 ] || lane=0
for a in "$@"; do
	case $a in
	--short) short=true lane=0 ;;
	--lane) lane=1 ;;
	--no-lane) lane=0 ;;
	*)
		echo "usage: $0 [--short | --no-lane]" >&2
		exit 2
		;;
	esac
done

if ! $short; then
	bash scripts/setup.sh
fi
export PATH="$PATH:/usr/local/go/bin"

# check_tree fails on a tracked file over 1 MiB and on a tracked executable
# that is not a script (its content does not start with "#!"): built
# binaries belong in .gitignore, not in git.
check_tree() {
	local bad=0 mode hash path size
	while IFS=$'\t' read -r meta path; do
		read -r mode hash _ <<<"$meta"
		size=$(git cat-file -s "$hash")
		if [ "$size" -gt 1048576 ]; then
			echo "tracked file over 1 MiB: $path ($size bytes)" >&2
			bad=1
		fi
		if [ "$mode" = 100755 ] && [ "$(git cat-file -p "$hash" | head -c 2)" != '#!' ]; then
			echo "tracked executable that is not a script: $path" >&2
			bad=1
		fi
	done < <(git ls-files -s)
	return $bad
}
check_tree

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# The lint gate. staticcheck is pinned in scripts/tools.mod (a module file
# of its own, so the SDK's users do not inherit the linter's dependencies).
# A suppression is a //lint:ignore line with its reason.
go tool -modfile=scripts/tools.mod staticcheck -checks all ./...
# The SDK builds on every OS, tests included: a developer on a Mac drives
# a remote engine with it. vet type-checks every package with its tests.
for goos in darwin windows; do
	GOOS=$goos go vet ./...
done

if $short; then
	exec go test -short -count=1 ./...
fi
rc=0
go test -race -count=1 -timeout 30m ./... || rc=$?
if [ "$lane" = 1 ]; then
	bash scripts/kernel-lane.sh || rc=1
else
	echo "test.sh: the kernel lane was left out (--no-lane)" >&2
fi
exit "$rc"
