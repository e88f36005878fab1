#!/usr/bin/env bash
# Grades a TLS listener with testssl.sh (Debian's testssl.sh package):
# protocols, cipher categories, forward secrecy, server preferences and
# defaults (certificate), HTTP security headers and the vulnerability
# checks. Fails on any finding of severity MEDIUM or higher, on testssl's
# own warnings (a check that could not run), and when HSTS is missing.
#
#   scripts/tls-grade.sh HOST:PORT [--name SERVER_NAME] [--ca ROOT.pem] [--out DIR] [--sni-only]
#
# --name is the server name sent (SNI, Host) when it differs from HOST
# (the connection still goes to HOST); --ca adds a root to trust (a
# private or test CA); --out keeps the JSON and text reports there.
# --sni-only says the listener has no default certificate (it refuses
# handshakes without a known server name): testssl's RFC 5746 check
# connects without one and cannot run, so its warning is reported but
# does not fail the grade (client-initiated renegotiation is still
# checked, with the name).
set -euo pipefail

usage() { echo "usage: $0 HOST:PORT [--name SERVER_NAME] [--ca ROOT.pem] [--out DIR] [--sni-only]" >&2; exit 2; }
[ $# -ge 1 ] || usage
target=$1; shift
name="" ca="" out="" skip=""
while [ $# -gt 0 ]; do
	case $1 in
	--name) name=$2; shift 2 ;;
	--ca) ca=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--sni-only) skip="secure_renego"; shift ;;
	*) usage ;;
	esac
done
host=${target%:*} port=${target##*:}
[ -n "$name" ] || name=$host

if ! command -v testssl >/dev/null 2>&1; then
	echo "installing testssl.sh (Debian package)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq testssl.sh >/dev/null
fi

own_out=""
if [ -z "$out" ]; then
	out=$(mktemp -d)
	own_out=1
fi
mkdir -p "$out"
json="$out/testssl.json" text="$out/testssl.txt"
rm -f "$json" "$text"
args=(--quiet --color 0 --warnings off --jsonfile "$json" --ip "$host"
	--connect-timeout 5 --openssl-timeout 5
	--protocols --std --fs --server-preference --server-defaults --headers --vulnerable)
[ -z "$ca" ] || args+=(--add-ca "$ca")
testssl "${args[@]}" "https://$name:$port/" >"$text" 2>&1 || true

# testssl's flat JSON: one object per finding, one field per line.
verdict=$(awk -v skip="$skip" '
	/"id"/       { id = $0; sub(/.*"id" *: *"/, "", id); sub(/".*/, "", id) }
	/"severity"/ { sev = $0; sub(/.*"severity" *: *"/, "", sev); sub(/".*/, "", sev) }
	/"finding"/  { f = $0; sub(/.*"finding" *: *"/, "", f); sub(/"[^"]*$/, "", f)
	               n++
	               if (id == skip && sev == "WARN") printf "(n/a)    %-28s %s (no server name sent)\n", id, f
	               else if (sev ~ /^(MEDIUM|HIGH|CRITICAL|WARN|FATAL)$/) { printf "%-8s %-28s %s\n", sev, id, f; bad++ }
	               if (id == "HSTS_time" && sev == "OK") hsts = 1 }
	END {
		if (n < 40) { printf "FATAL    %-28s %s\n", "scan", "testssl reported only " n " findings: the scan did not run"; bad++ }
		if (!hsts) { printf "MEDIUM   %-28s %s\n", "HSTS", "no Strict-Transport-Security header"; bad++ }
		printf "%d findings checked, %d at MEDIUM or above\n", n, bad
	}' "$json" 2>/dev/null || echo "FATAL no JSON report (see $text)")
echo "$verdict"
[ -z "$own_out" ] || rm -rf "$out"
if grep -qE '^(MEDIUM|HIGH|CRITICAL|WARN|FATAL) ' <<<"$verdict"; then
	echo "tls-grade: $target ($name) FAILED" >&2
	exit 1
fi
echo "tls-grade: $target ($name) passed"
