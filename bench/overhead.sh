#!/usr/bin/env bash
# The cost of a feature, measured by running the gateway with and without
# it AT THE SAME TIME: every variant is a separate rampart process, all
# pinned to one CPU with the upstream and loaded together by their own wrk,
# so that a noisy neighbour slows every variant in the same seconds. The
# scheduler shares the CPU between the processes; the req/s of a variant
# over the baseline's in the same round is the feature's throughput cost.
# Sequential runs (bench/run.sh) cannot resolve a few percent on a shared
# VM: consecutive 5 s runs of one config differ by up to 30% there.
#
#   bench/overhead.sh                       # observability: off, on (default 1% tracing), on with 10% tracing
#   ROUNDS=12 DURATION=5 bench/overhead.sh
#   VARIANTS="off log trace metrics" bench/overhead.sh
#
# Variants (each a YAML fragment on top of one public pass-through route):
#   off      no access log, no security events, no admin listener (so no
#            metrics), no tracing: the baseline, always run
#   on       access log, security events, metrics, tracing (default ratio)
#   on10     the same with sample_ratio 0.1
#   log      access log only        events   security events only
#   metrics  admin listener only    trace    tracing only (default ratio)
#   samecfg  the baseline again (the method's own noise)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-5}
VARIANTS=${VARIANTS:-"on on10"}
# What a client sends besides Host. Not fewer: the gateway adds five
# headers of its own (X-Forwarded-For/-Proto/-Host, X-Real-Ip,
# X-Request-Id), and Go's maps change representation past 8 entries, so
# with exactly 3 client headers the one header tracing adds (traceparent)
# would also pay that one-time growth (~0.4 µs), which real requests,
# with more headers, pay with or without tracing.
HDRS=(-H "User-Agent: bench-client/1.0" -H "Accept: application/json" -H "Accept-Encoding: gzip" -H "Accept-Language: en")

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_wrk

echo "building..." >&2
start_upstream
go build -o "$work/rampart" ./cmd/rampart

export BENCH_ADMIN_TOKEN=bench-admin-token-0123456789abcdef0123

fragment() { # variant name -> YAML lines
	local off='access_log: {enabled: false}
security_events: {enabled: false}'
	local admin="admin: {address: \"127.0.0.1:$(free_port)\", token: \"\${env:BENCH_ADMIN_TOKEN}\"}"
	local trace="tracing: {endpoint: \"127.0.0.1:$P_UP\", allow_plaintext: true}"
	case $1 in
	off | samecfg) echo "$off" ;;
	on) printf 'access_log: {output: %s}\nsecurity_events: {output: %s}\n%s\n%s\n' "$work/$1-access.log" "$work/$1-events.log" "$admin" "$trace" ;;
	on10) printf 'access_log: {output: %s}\nsecurity_events: {output: %s}\n%s\n%s\n' "$work/$1-access.log" "$work/$1-events.log" "$admin" "${trace%\}}, sample_ratio: 0.1}" ;;
	log) printf 'access_log: {output: %s}\nsecurity_events: {enabled: false}\n' "$work/$1-access.log" ;;
	lognull) printf 'access_log: {output: /dev/null}\nsecurity_events: {enabled: false}\n' ;;
	events) printf 'access_log: {enabled: false}\nsecurity_events: {output: %s}\n' "$work/$1-events.log" ;;
	metrics) printf '%s\n%s\n' "$off" "$admin" ;;
	trace) printf '%s\n%s\n' "$off" "$trace" ;;
	*) echo "unknown variant $1" >&2; exit 2 ;;
	esac
}

declare -A PORT PID
all="off $VARIANTS"
for v in $all; do
	PORT[$v]=$(free_port)
	cat >"$work/$v.yaml" <<YAML
version: 1
listeners: [{name: bench, address: "127.0.0.1:${PORT[$v]}"}]
upstreams: [{name: up, allow_plaintext: true, targets: [{url: "http://127.0.0.1:$P_UP"}]}]
routes: [{id: all, prefix: /, upstream: up, public: true}]
$(fragment "$v")
YAML
	taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$work/rampart" run --config "$work/$v.yaml" --watch=false >/dev/null 2>"$work/$v.err" &
	pids+=($!)
	PID[$v]=$!
done
for v in $all; do
	for i in $(seq 1 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:${PORT[$v]}/" 2>/dev/null && break
		sleep 0.1
		[ "$i" = 100 ] && { echo "$v did not come up" >&2; cat "$work/$v.err" >&2; exit 1; }
	done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
results="$work/results.tsv"
: >"$results"
echo "warming up..." >&2
warm=()
for v in $all; do
	taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d2s "${HDRS[@]}" "http://127.0.0.1:${PORT[$v]}/" >/dev/null &
	warm+=($!)
done
wait "${warm[@]}"
declare -A C0 WP
for r in $(seq 1 "$ROUNDS"); do
	for v in $all; do C0[$v]=$(cpu_ticks "${PID[$v]}"); done
	for v in $all; do
		taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${HDRS[@]}" "http://127.0.0.1:${PORT[$v]}/" >"$work/$v.wrk" &
		WP[$v]=$!
	done
	for v in $all; do wait "${WP[$v]}"; done
	for v in $all; do
		n=$(awk '/requests in/{print $1}' "$work/$v.wrk")
		rps=$(awk '/Requests\/sec/{print $2}' "$work/$v.wrk")
		cpu=$(awk -v t=$(($(cpu_ticks "${PID[$v]}") - ${C0[$v]})) -v n="$n" -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz*1e6/n}')
		errs=$(awk '/Non-2xx|Socket errors/' "$work/$v.wrk")
		[ -z "$errs" ] || { echo "WARNING: $v: $errs" >&2; }
		printf "%s\t%s\t%s\t%s\n" "$r" "$v" "$rps" "$cpu" >>"$results"
		printf "round %s %-8s %9s req/s  cpu %6sus/req\n" "$r" "$v" "$rps" "$cpu" >&2
	done
done

python3 - "$results" "$VARIANTS" <<'PY'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for r, v, rps, cpu in rows:
    by.setdefault(v, {})[r] = (float(rps), float(cpu))
base = by["off"]
print(f"\n{len(base)} rounds, all variants loaded at the same time; ratios are medians of per-round ratios to 'off'\n")
print("| variant | req/s (median) | vs off | range of rounds | proxy CPU µs/req | CPU vs off |")
print("|---|---:|---:|---:|---:|---:|")
for v in ["off"] + sys.argv[2].split():
    rr = sorted(by[v][r][0] / base[r][0] for r in by[v])
    cr = [by[v][r][1] / base[r][1] for r in by[v]]
    print(f"| {v} | {st.median(x[0] for x in by[v].values()):.0f} | {st.median(rr):.3f}× | {rr[0]:.3f}–{rr[-1]:.3f} | "
          f"{st.median(x[1] for x in by[v].values()):.1f} | {st.median(cr):.3f}× |")
PY
