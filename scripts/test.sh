#!/usr/bin/env bash
# The whole test suite: sets the machine up (packages, hugepages), then
# vets and tests every package. Under CI=true a test whose prerequisite
# (root, hugepages, DPDK) is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

scripts/setup.sh
echo "== go vet"
go vet ./...
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
echo "== go test"
go test -count=1 -timeout 15m "$@" ./...
