#!/usr/bin/env bash
# Legitimate throughput under a flood of new client addresses, with abuse
# detection on. The gateway trusts the sender as its proxy, so every flood
# request carries an address never seen before in X-Forwarded-For (half
# IPv4, half IPv6 each in a /64 of its own): what a botnet behind a CDN, or
# an IPv6 host walking its prefix, can send. First PRELOAD addresses are
# sent as fast as possible (the guard's tables long full), then ROUNDS
# alternate DURATION seconds of legitimate traffic alone with the same
# traffic beside a flood of FLOOD_RATE new addresses per second.
#
# Between them it measures the gateway's own CPU (from /proc) for COST_N
# flood requests and for a few seconds of legitimate ones: what each
# costs, and so the share of its core a flood of FLOOD_RATE per second
# leaves to legitimate traffic, whatever the clients sharing a core did.
#
# With IDENTITIES=on every flood request is also a new authenticated
# identity and a new session cookie, refused by the route's authorization
# (a signal counted under all three keys).
#
#   bench/flood.sh
#   PRELOAD=1000000 ROUNDS=5 DURATION=5 FLOOD_RATE=2000 bench/flood.sh
#   IDENTITIES=on PRELOAD=300000 bench/flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PRELOAD=${PRELOAD:-1000000}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
FLOOD_RATE=${FLOOD_RATE:-2000}
ABUSE=${ABUSE:-on} # off: the same without abuse detection (what the flood costs anyway)
ANOMALY=${ANOMALY:-on} # off: abuse detection without the learned baseline
IDENTITIES=${IDENTITIES:-off}
ANOMALY_LINE="  anomaly: {interval: 10s, action: log}"
FLOOD_SECRET=flood-bench-secret-0123456789abcdef0123
FLOOD_ARGS=()
[ "$ANOMALY" = on ] || ANOMALY_LINE=""

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_wrk

echo "building..." >&2
start_upstream
go build -o "$work/flood" ./bench/flood
go build -o "$work/rampart" ./cmd/rampart

P_GW=$(free_port)
cat >"$work/flood.yaml" <<YAML
version: 1
listeners: [{name: bench, address: "127.0.0.1:$P_GW", trusted_proxies: [127.0.0.1]}]
upstreams: [{name: up, allow_plaintext: true, targets: [{url: "http://127.0.0.1:$P_UP"}]}]
routes: [{id: api, prefix: /api, upstream: up, public: true, overload: {off: true}}]
access_log: {output: $work/access.log}
security_events: {output: $work/events.log}
YAML
if [ "$IDENTITIES" = on ]; then
	FLOOD_ARGS=(-hs-secret "$FLOOD_SECRET")
	export RAMPART_FLOOD_SECRET=$FLOOD_SECRET
	cat >>"$work/flood.yaml" <<YAML
authn:
  jwt:
    - {name: flood, issuer: "https://flood.test", audiences: [bench], algorithms: [HS256], keys: [{kid: k, algorithm: HS256, secret: "\${env:RAMPART_FLOOD_SECRET}"}]}
YAML
	sed -i 's|^routes: \[|routes: [{id: id, prefix: /id, upstream: up, auth: {jwt: [flood]}, authorize: {scopes_all: [never]}}, |' "$work/flood.yaml"
fi
[ "$ABUSE" = off ] || cat >>"$work/flood.yaml" <<YAML
abuse:
  ban_for: 1m
  session_cookie: sid
$ANOMALY_LINE
YAML
taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$work/rampart" run --config "$work/flood.yaml" --watch=false ${CPUPROFILE:+--cpuprofile "$CPUPROFILE"} >/dev/null 2>"$work/rampart.err" &
pids+=($!)
GW=$!
for i in $(seq 1 100); do
	curl -fsS -o /dev/null "http://127.0.0.1:$P_GW/api/" 2>/dev/null && break
	sleep 0.1
	[ "$i" = 100 ] && { echo "rampart did not come up" >&2; cat "$work/rampart.err" >&2; exit 1; }
done
rss() { awk -v k="$2" '$1==k":"{printf "%.0f", $2/1024}' "/proc/$1/status"; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; } # seconds
legit() { # -> req/s of the legitimate client
	taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "X-Forwarded-For: 198.51.100.7" "http://127.0.0.1:$P_GW/api/" >"$work/wrk.out"
	awk '/Non-2xx|Socket errors/{print "WARNING: " $0 > "/dev/stderr"}' "$work/wrk.out"
	awk '/Requests\/sec/{print $2}' "$work/wrk.out"
}

taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$P_GW/api/" >/dev/null
rss0=$(rss "$GW" VmRSS)
echo "preloading $PRELOAD new addresses..." >&2
taskset -c "$WRK_CPU" "$work/flood" -target "http://127.0.0.1:$P_GW" -n "$PRELOAD" -conns 16 -duration 10m "${FLOOD_ARGS[@]}"
rss1=$(rss "$GW" VmRSS)
# What one flood request and one legitimate request cost the gateway
# (its own CPU, from /proc: unaffected by how fast the clients ran).
COST_N=${COST_N:-30000}
c0=$(cpu "$GW")
taskset -c "$WRK_CPU" "$work/flood" -target "http://127.0.0.1:$P_GW" -start "$PRELOAD" -n "$COST_N" -conns 16 -duration 5m "${FLOOD_ARGS[@]}" 2>/dev/null
c1=$(cpu "$GW")
taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d5s -H "X-Forwarded-For: 198.51.100.7" "http://127.0.0.1:$P_GW/api/" >"$work/wrk-cost.out"
c2=$(cpu "$GW")
legit_n=$(awk '/requests in/{print $1}' "$work/wrk-cost.out")
flood_us=$(python3 -c "print(f'{($c1 - $c0) / $COST_N * 1e6:.1f}')")
legit_us=$(python3 -c "print(f'{($c2 - $c1) / $legit_n * 1e6:.1f}')")
echo "gateway CPU: a flood request $flood_us µs, a legitimate request $legit_us µs" >&2
next=$((PRELOAD + COST_N))
results="$work/results.tsv"
: >"$results"
for r in $(seq 1 "$ROUNDS"); do
	quiet=$(legit)
	n=$((FLOOD_RATE * (DURATION + 2)))
	# The flood shares wrk's CPU at the lowest priority: what it takes
	# from wrk would lower the legitimate rate without the gateway being
	# any less fair.
	taskset -c "$WRK_CPU" nice -n 19 "$work/flood" -target "http://127.0.0.1:$P_GW" -start "$next" -n "$n" -rate "$FLOOD_RATE" -conns 8 -duration "$((DURATION + 2))s" "${FLOOD_ARGS[@]}" 2>"$work/flood.out" &
	fp=$!
	sleep 1
	loud=$(legit)
	wait "$fp"
	cat "$work/flood.out" >&2
	next=$((next + n))
	printf "%s\t%s\t%s\n" "$r" "$quiet" "$loud" >>"$results"
	printf "round %s: alone %9s req/s, beside the flood %9s req/s\n" "$r" "$quiet" "$loud" >&2
done
rss2=$(rss "$GW" VmRSS)
hwm=$(rss "$GW" VmHWM)
python3 - "$results" "$rss0" "$rss1" "$rss2" "$hwm" "$next" "$FLOOD_RATE" "$flood_us" "$legit_us" <<'PY'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
ratios = sorted(float(b) / float(a) for _, a, b in rows)
rss0, rss1, rss2, hwm, total, rate, flood_us, legit_us = sys.argv[2:10]
share = 1 - float(rate) * float(flood_us) / 1e6
print(f"\ngateway CPU per request: flood {flood_us} µs, legitimate {legit_us} µs: a flood of {rate}/s takes "
      f"{(1 - share) * 100:.1f}% of the gateway's core, leaving legitimate traffic {share:.3f}× of it")
print(f"\n{len(rows)} rounds; {total} distinct client addresses sent in all; flood beside the measured traffic: {rate} new addresses/s\n")
print("| legitimate req/s alone (median) | beside the flood (median) | ratio (median of rounds) | range | RSS idle → after preload → end MiB | peak RSS MiB |")
print("|---:|---:|---:|---:|---:|---:|")
print(f"| {st.median(float(a) for _, a, _ in rows):.0f} | {st.median(float(b) for _, _, b in rows):.0f} | {st.median(ratios):.3f}× | "
      f"{ratios[0]:.3f}–{ratios[-1]:.3f} | {rss0} → {rss1} → {rss2} | {hwm} |")
PY
