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

echo "== go test -race"
go test -race -count=1 -timeout 12m "$@" ./...

echo "== OWASP CRS regression suite (no -race: ~4,700 sequential requests)"
go test -count=1 -run '^TestCRSRegression$' ./internal/waf

echo "== fuzz seeds (short runs of each fuzz target)"
go test -run '^$' -fuzz '^FuzzNormalise$' -fuzztime 10s ./internal/router
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 10s ./internal/config
go test -run '^$' -fuzz '^FuzzParseAndVerify$' -fuzztime 10s ./internal/authn
go test -run '^$' -fuzz '^FuzzCheckJSON$' -fuzztime 10s ./internal/validate
go test -run '^$' -fuzz '^FuzzBucketKey$' -fuzztime 5s ./internal/ratelimit
go test -run '^$' -fuzz '^FuzzAllowed$' -fuzztime 5s ./internal/cors
go test -run '^$' -fuzz '^FuzzFraming$' -fuzztime 10s ./internal/server
go test -run '^$' -fuzz '^FuzzAppendJSONString$' -fuzztime 5s ./internal/pipeline
go test -run '^$' -fuzz '^FuzzAgreesWithGoJose$' -fuzztime 10s ./internal/authn

echo "all tests passed"
