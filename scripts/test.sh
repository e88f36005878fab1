#!/usr/bin/env bash
# The whole test suite: formatting, vet, and every test with the race
# detector. It installs and starts whatever the tests need, on free loopback
# ports, and stops it afterwards. Needs only Go (and root for apt-get when
# a later service is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"
	echo "$unformatted"
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 12m "$@" ./...

echo "== fuzz seeds (short runs of each fuzz target)"
go test -run '^$' -fuzz '^FuzzNormalise$' -fuzztime 10s ./internal/router
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 10s ./internal/config
go test -run '^$' -fuzz '^FuzzParseAndVerify$' -fuzztime 10s ./internal/authn

echo "all tests passed"
