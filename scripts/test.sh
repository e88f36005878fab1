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

echo "== services"
# need COMMAND PACKAGE installs PACKAGE from Debian when COMMAND is
# missing. A package may start a system service the tests do not use
# (redis-server would): Debian's policy-rc.d (exit 101: "not allowed")
# keeps it from starting, so nothing needs stopping afterwards. Each test
# starts its own private instances on free loopback ports and stops them.
updated=""
need() {
	command -v "$1" >/dev/null 2>&1 && return
	echo "installing $2 (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	[ -n "$updated" ] || { apt-get update -qq >/dev/null; updated=1; }
	local own_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		own_policy=1
	fi
	apt-get install -y -qq "$2" >/dev/null
	[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
}
need redis-server redis-server       # shared rate limits, bans, ACME storage
export RAMPART_REQUIRE_REDIS=1
need chromium chromium               # the dashboard and docs portal tests (chromedp)
export RAMPART_REQUIRE_CHROMIUM=1
need systemd-analyze systemd         # grades the systemd unit (offline)
export RAMPART_REQUIRE_SYSTEMD_ANALYZE=1
need testssl testssl.sh              # grades the TLS listeners (scripts/tls-grade.sh)
export RAMPART_REQUIRE_TESTSSL=1
need buildah buildah                 # builds the container image (from scratch)
export RAMPART_REQUIRE_BUILDAH=1

echo "== go test -race"
# One line per package, the output of any failed test, and the skipped
# tests with their reasons at the end.
go build -o "${TMPDIR:-/tmp}/rampart-testsummary.$$" ./scripts/testsummary
summary="${TMPDIR:-/tmp}/rampart-testsummary.$$"
trap 'rm -f "$summary"' EXIT
set +e
go test -race -count=1 -timeout 12m -json "$@" ./... | "$summary"
status=${PIPESTATUS[1]}
set -e
[ "$status" -eq 0 ] || exit "$status"

echo "== OWASP CRS regression suite and the WAF prefilter's differential tests (no -race: ~35,000 requests through Coraza)"
go test -count=1 -timeout 10m -run '^(TestCRSRegression|TestPrefilterDifferential|TestPrefilterNeverRefusesAMatch)$' ./internal/waf

echo "== fuzzing (each target for a few seconds; FUZZTIME=10m for a release check)"
# A newly interesting input is minimized for up to -fuzzminimizetime
# (60 s by default), with no executions meanwhile: a short minimize time
# keeps every target fuzzing for its whole slot.
fuzz() { # package target seconds
	local t=${FUZZTIME:-${3}s} out
	out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" -fuzzminimizetime 2s "$1" 2>&1) || {
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure (golang/go#75804, fixed in Go 1.27): no input
		# failed then, and none was written. Anything else fails the run.
		if grep -q 'context deadline exceeded' <<<"$out" && ! grep -qE 'Failing input written|panic:|_test.go:[0-9]+:' <<<"$out"; then
			echo "ok   $2 ($1): stopped by Go's fuzz deadline race (golang/go#75804); no failing input"
			return 0
		fi
		echo "$out"
		return 1
	}
	echo "$out" | awk -v target="$2" -v pkg="$1" '/execs:/ { line = $0 } END {
		sub(/.*execs: /, "", line); sub(/ \(.*new interesting: /, " execs, new interesting: ", line); sub(/ \(total.*/, "", line)
		printf "ok   %-22s %-24s %s\n", target, pkg, line }'
}
fuzz ./internal/router FuzzNormalise 10
fuzz ./internal/config FuzzParse 10
fuzz ./internal/authn FuzzParseAndVerify 10
fuzz ./internal/authn FuzzAgreesWithGoJose 10
fuzz ./internal/validate FuzzCheckJSON 10
fuzz ./internal/validate FuzzCheckMultipart 10
fuzz ./internal/ratelimit FuzzBucketKey 5
fuzz ./internal/cors FuzzAllowed 5
fuzz ./internal/server FuzzFraming 10
fuzz ./internal/pipeline FuzzAppendJSONString 5

echo "all tests passed"
