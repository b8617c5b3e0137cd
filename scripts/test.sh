#!/usr/bin/env bash
# test.sh runs the whole test suite against the real parts: it installs and
# starts them (scripts/setup.sh), checks formatting and vet, then runs every
# test with the race detector as root. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

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
go test -race -count=1 -timeout 30m ./...
