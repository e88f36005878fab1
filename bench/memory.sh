#!/usr/bin/env bash
# Memory of rampart beside nginx, on loopback, one public route each in
# front of the same upstream: resident memory idle, after a load run,
# under load over many connections, and per idle keep-alive connection.
# Resident memory is split in anonymous (heap, stacks: what the process
# allocated) and file (its binary's pages in memory, shared and
# reclaimable).
#
#   bench/memory.sh
#   LOAD_CONNS="50 1000" IDLE_CONNS="1000 10000" DURATION=5 bench/memory.sh
#   BASELINE=/path/to/older/rampart TARGETS="rampart baseline" bench/memory.sh
#
# Every load run is bounded by DURATION; idle connections are held for
# HOLD seconds at most.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
LOAD_CONNS=${LOAD_CONNS:-"10 200 1000"}
IDLE_CONNS=${IDLE_CONNS:-"1000 10000"}
HOLD=${HOLD:-4}
TARGETS=${TARGETS:-"rampart nginx"}

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_wrk
command -v nginx >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
ulimit -n "$(ulimit -Hn)" # idle connections: one descriptor each, client and server

echo "building..." >&2
go build -o "$work/rampart" ./cmd/rampart
go build -o "$work/conns" ./bench/conns
start_upstream
P_RAMPART=$(free_port); P_NGINX=$(free_port)

cat >"$work/rampart.yaml" <<YAML
version: 1
listeners:
  - name: bench
    address: 127.0.0.1:$P_RAMPART
    limits: {max_connections: 20000}
upstreams:
  - name: up
    allow_plaintext: true
    targets: [{url: "http://127.0.0.1:$P_UP"}]
access_log: {output: "$work/access.log"}
routes:
  - id: public
    prefix: /
    upstream: up
    public: true
    skip_assertion: true
    overload: {off: true}   # what 1,000 connections in flight hold, as nginx holds them
YAML
nginx_conf "$P_NGINX" 20000
# start TARGET: a fresh server (each phase measures its own), its PID in
# $pid once it answers; stop: that server stopped.
start() {
	case $1 in
	rampart) taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$work/rampart" run --config "$work/rampart.yaml" >>"$work/rampart.log" 2>&1 & ;;
	baseline) taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$BASELINE" run --config "$work/rampart.yaml" >>"$work/rampart.log" 2>&1 & ;;
	nginx) taskset -c "$SUT_CPU" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -g 'daemon off;' & ;;
	esac
	pid=$!
	pids+=("$pid")
	until curl -fsS -o /dev/null "http://127.0.0.1:$(port_of "$1")/" 2>/dev/null; do sleep 0.2; done
	sleep 2
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

port_of() { case $1 in rampart | baseline) echo "$P_RAMPART";; nginx) echo "$P_NGINX";; esac; }

# rss PID: "anon file" resident KiB of PID and its children (nginx's
# worker).
rss() {
	local a=0 f=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		read -r pa pf < <(awk '/^RssAnon:/{a=$2} /^RssFile:/{f=$2} END{print a+0, f+0}' "/proc/$p/status")
		a=$((a + pa)); f=$((f + pf))
	done
	echo "$a $f"
}
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
total() { read -r a f <<<"$1"; mib $((a + f)); }
show() { read -r a f <<<"$2"; printf "%-8s %-26s %7s MiB  (anon %6s, file %6s)\n" "$1" "$3" "$(mib $((a + f)))" "$(mib "$a")" "$(mib "$f")"; }

for t in $TARGETS; do
	port=$(port_of "$t")
	start "$t"
	show "$t" "$(rss "$pid")" "idle"
	stop
	for n in $IDLE_CONNS; do
		start "$t"
		before=$(rss "$pid")
		"$work/conns" -addr "127.0.0.1:$port" -n "$n" -hold "${HOLD}s" >"$work/conns.out" &
		conns_pid=$!
		until grep -q ready "$work/conns.out" 2>/dev/null || ! kill -0 "$conns_pid" 2>/dev/null; do sleep 0.2; done
		sleep 1
		held=$(rss "$pid")
		wait "$conns_pid"
		read -r ba bf <<<"$before"; read -r ha hf <<<"$held"
		show "$t" "$held" "$n idle conns"
		printf "%-8s %-26s %7s KiB per connection\n" "$t" "" "$(awk -v d=$(( (ha + hf) - (ba + bf) )) -v n="$n" 'BEGIN{printf "%.1f", d/n}')"
		stop
	done
	for c in $LOAD_CONNS; do
		start "$t"
		# The highest resident memory during the run, sampled every 0.2 s.
		taskset -c "$WRK_CPU" wrk -t1 -c"$c" -d"${DURATION}s" "http://127.0.0.1:$port/" >"$work/wrk.out" &
		wrk_pid=$!
		peak="0 0"
		while kill -0 "$wrk_pid" 2>/dev/null; do
			now=$(rss "$pid")
			[ "$(total "$now" | tr -d .)" -gt "$(total "$peak" | tr -d .)" ] && peak=$now
			sleep 0.2
		done
		wait "$wrk_pid"
		rps=$(awk '/Requests\/sec/{printf "%.0f", $2}' "$work/wrk.out")
		show "$t" "$peak" "peak, load over $c conns"
		show "$t" "$(rss "$pid")" "after it ($rps req/s)"
		stop
	done
done
