#!/usr/bin/env bash
# Overload: a CRS (paranoia 1) route offered 1×, 2× and 4× its capacity,
# open-loop, with shedding on (the default) and off, on loopback. For
# each: the admitted requests' p50/p99 (from their scheduled send time,
# so queueing is counted), the share shed (503 overload.shed), and the
# p99 of another route served at a light rate at the same time.
#
#   bench/overload.sh
#   MULTS="1 2 4" DURATION=8 CONNS=200 bench/overload.sh
#
# Pinning: the load generators on CPU 0; rampart (GOMAXPROCS=1) and the
# upstream on CPU 1. Every run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
MULTS=${MULTS:-"1 2 4"}
export CONNS=${CONNS:-200}
OTHER_RATE=${OTHER_RATE:-100}

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_wrk
ulimit -n "$(ulimit -Hn)"

echo "building..." >&2
go build -o "$work/rampart" ./cmd/rampart
go build -o "$work/latency" ./bench/latency
start_upstream
P_ON=$(free_port); P_OFF=$(free_port)

# config PORT OVERLOAD: one listener, the CRS route and a plain one.
config() {
	cat <<YAML
version: 1
listeners:
  - name: bench
    address: 127.0.0.1:$1
    limits: {max_connections: 20000}
upstreams:
  - name: up
    allow_plaintext: true
    targets: [{url: "http://127.0.0.1:$P_UP"}]
access_log: {enabled: false}
routes:
  - id: waf
    prefix: /waf
    upstream: up
    public: true
    skip_assertion: true
    waf: {paranoia: 1}
    overload: $2
  - id: other
    prefix: /other
    upstream: up
    public: true
    skip_assertion: true
YAML
}
config "$P_ON" "{}" >"$work/on.yaml"
config "$P_OFF" "{off: true}" >"$work/off.yaml"

# start NAME: a fresh gateway (each run starts from a cold limit).
start() {
	taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$work/rampart" run --config "$work/$1.yaml" >>"$work/rampart.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$(port_of "$1")/other/" 2>/dev/null && return; sleep 0.2; done
	echo "the gateway did not start: $(tail -3 "$work/rampart.log")" >&2
	exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
port_of() { case $1 in on) echo "$P_ON";; off) echo "$P_OFF";; esac; }
WAF_PATH="/waf/items?page=2&sort=name&q=blue+shoes"

# The route's capacity: closed-loop throughput over 50 connections,
# without shedding (its 503s would count as served).
start off
taskset -c "$WRK_CPU" wrk -t1 -c50 -d2s "http://127.0.0.1:$P_OFF$WAF_PATH" >/dev/null
capacity=$(taskset -c "$WRK_CPU" wrk -t1 -c50 -d5s "http://127.0.0.1:$P_OFF$WAF_PATH" | awk '/Requests\/sec/{printf "%.0f", $2}')
stop
echo "capacity of the CRS route: $capacity req/s" >&2
# Unloaded: a quarter of it.
start on
read -r _ _ base50 _ base99 _ _ < <(taskset -c "$WRK_CPU" "$work/latency" -shed -url "http://127.0.0.1:$P_ON$WAF_PATH" -rate $((capacity / 4)) -conns 20 -duration "${DURATION}s")
read -r _ _ other50 _ other99 _ _ < <(taskset -c "$WRK_CPU" "$work/latency" -shed -url "http://127.0.0.1:$P_ON/other/x" -rate "$OTHER_RATE" -conns 4 -duration "${DURATION}s")
stop
printf "unloaded (%d req/s): p50 %s us, p99 %s us; the other route alone: p99 %s us\n\n" $((capacity / 4)) "$base50" "$base99" "$other99"

printf "%-9s %-5s %9s %9s %9s %10s %10s %13s\n" shedding load offered admitted shed p50_us p99_us other_p99_us
for m in $MULTS; do
	for mode in on off; do
		start "$mode"
		rate=$((capacity * m))
		taskset -c "$WRK_CPU" "$work/latency" -url "http://127.0.0.1:$(port_of "$mode")/other/x" -rate "$OTHER_RATE" -conns 4 -duration "${DURATION}s" -shed >"$work/other.out" || true &
		other_pid=$!
		out=$(taskset -c "$WRK_CPU" "$work/latency" -shed -url "http://127.0.0.1:$(port_of "$mode")$WAF_PATH" -rate "$rate" -conns "$CONNS" -duration "${DURATION}s" || true)
		wait "$other_pid" || true
		read -r n e p50 _ p99 _ shed <<<"$out"
		read -r _ _ _ _ op99 _ _ <"$work/other.out"
		printf "%-9s %-5s %9d %9d %8.1f%% %10s %10s %13s\n" "$mode" "${m}x" $((rate * DURATION)) "$n" \
			"$(awk -v s="$shed" -v n="$n" -v e="$e" 'BEGIN{t=s+n; if (t==0) t=1; printf "%.1f", 100*s/t}')" "$p50" "$p99" "$op99"
		stop
	done
done
