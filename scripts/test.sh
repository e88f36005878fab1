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
# Redis for the shared rate-limit tests: installed from Debian when
# missing; each test starts its own private instance on a free loopback
# port and stops it.
if ! command -v redis-server >/dev/null 2>&1; then
	echo "installing redis-server (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# The package would start a system instance the tests do not use:
	# Debian's policy-rc.d (exit 101: "not allowed") keeps it from starting,
	# so nothing needs stopping afterwards.
	own_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		own_policy=1
	fi
	apt-get install -y -qq redis-server >/dev/null
	[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
export RAMPART_REQUIRE_REDIS=1
# Headless Chromium for the dashboard test (driven with chromedp).
if ! command -v chromium >/dev/null 2>&1; then
	echo "installing chromium (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq chromium >/dev/null
fi
export RAMPART_REQUIRE_CHROMIUM=1
# systemd-analyze grades the systemd unit under deploy/ (offline: it needs
# no running systemd).
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "installing systemd (Debian package, for systemd-analyze)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq systemd >/dev/null
fi
export RAMPART_REQUIRE_SYSTEMD_ANALYZE=1
# testssl.sh grades the TLS listeners (scripts/tls-grade.sh).
if ! command -v testssl >/dev/null 2>&1; then
	echo "installing testssl.sh (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq testssl.sh >/dev/null
fi
export RAMPART_REQUIRE_TESTSSL=1
# buildah builds the container image (from scratch: nothing to pull).
if ! command -v buildah >/dev/null 2>&1; then
	echo "installing buildah (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq buildah >/dev/null
fi
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

echo "== OWASP CRS regression suite (no -race: ~4,700 sequential requests)"
go test -count=1 -run '^TestCRSRegression$' ./internal/waf

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
