#!/usr/bin/env bash
# Side-by-side load benchmark on loopback: the upstream directly, rampart,
# a bare Go httputil.ReverseProxy, nginx and Caddy, interleaved and repeated.
# For each target it prints median req/s, p50/p99 latency and the proxy's
# CPU time per request (from /proc/PID/stat before and after each run).
#
#   bench/run.sh                 # 5 rounds of 10 s per target
#   ROUNDS=3 DURATION=5 bench/run.sh
#   TARGETS="direct rampart bare nginx" CONNS=1000 OVERLOAD=off bench/run.sh
#
# modsec and modsec-json are nginx with libmodsecurity3 and the same CRS
# rule files at the same paranoia level as rampart-waf and
# rampart-waf-json (a clean GET with a query string; a 1 KiB JSON POST,
# bench/order.json).
#
# Pinning: wrk on CPU 0; upstream and proxy on CPU 1 (GOMAXPROCS=1 for Go
# processes, one nginx worker). Every run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
RATE=${RATE:-5000}   # latency phase: requests/s, below every target's saturation
# Targets left out of the latency phase: their capacity (a few hundred
# requests/s on one core) is below any rate the others are compared at.
NO_LATENCY=${NO_LATENCY:-"rampart-waf-json modsec-json"}
# OVERLOAD=off turns shedding off on the pass-through route (on by
# default, as for users): with many connections (CONNS=1000) the
# closed loop holds the gateway at saturation, which shedding refuses
# in part; throughput at saturation is then measured with it off.
OVERLOAD=${OVERLOAD:-on}
OVERLOAD_OFF=false
[ "$OVERLOAD" = off ] && OVERLOAD_OFF=true
TARGETS=${TARGETS:-"direct rampart rampart-rl-local rampart-rl-redis rampart-jwt rampart-chain rampart-chain-reuse rampart-waf rampart-waf-json modsec modsec-json rampart-openapi rampart-obs-off rampart-obs-on rampart-obs-on10 bare nginx caddy"}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need caddy || ! need taskset || ! need redis-server; then
	echo "installing wrk, nginx, caddy, redis (Debian packages)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq wrk nginx caddy util-linux redis-server >/dev/null
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
P_UP=$(free_port); P_RAMPART=$(free_port); P_RAMPART2=$(free_port); P_RAMPART3=$(free_port); P_RAMPART4=$(free_port); P_RAMPART5=$(free_port); P_ADMIN=$(free_port); P_ADMIN5=$(free_port); P_REDIS=$(free_port); P_BARE=$(free_port); P_NGINX=$(free_port); P_CADDY=$(free_port); P_MODSEC=$(free_port)

echo "building..." >&2
go build -o "$work/upstream" ./bench/upstream
go build -o "$work/bareproxy" ./bench/bareproxy
go build -o "$work/rampart" ./cmd/rampart
go build -o "$work/latency" ./bench/latency

# Not a shell function: "$!" must be the server's own PID so that the
# CPU accounting and the cleanup reach it.
PIN="taskset -c $SUT_CPU env GOMAXPROCS=1"

$PIN "$work/upstream" -addr "127.0.0.1:$P_UP" &
pids+=($!)
taskset -c "$SUT_CPU" redis-server --bind 127.0.0.1 --port "$P_REDIS" --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)

# An ES256 key for the authenticated route; one token, reused by wrk (the
# verified-token cache is what a real client's repeated token hits).
openssl ecparam -name prime256v1 -genkey -noout -out "$work/jwt.key" 2>/dev/null
openssl ec -in "$work/jwt.key" -pubout -out "$work/jwt.pub" 2>/dev/null
TOKEN=$("$work/rampart" token --key "$work/jwt.key" --kid bench --iss https://idp.bench --aud bench --sub wrk --ttl 1h --scope "bench:read")

# The OpenAPI route's document: GET /oas/items with two typed query
# parameters (what the validated route checks on every request).
cat >"$work/items.yaml" <<'OAS'
openapi: 3.1.0
info: {title: Items, version: "1"}
servers: [{url: /oas}]
paths:
  /items:
    get:
      parameters:
        - {name: q, in: query, schema: {type: string, maxLength: 64}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
      responses:
        "200": {description: items}
OAS

cat >"$work/rampart.yaml" <<YAML
version: 1
listeners:
  - name: bench
    address: 127.0.0.1:$P_RAMPART
upstreams:
  - name: up
    allow_plaintext: true
    targets: [{url: "http://127.0.0.1:$P_UP"}]
authn:
  jwt:
    - name: bench
      issuer: https://idp.bench
      audiences: [bench]
      algorithms: [ES256]
      keys: [{kid: bench, algorithm: ES256, file: $work/jwt.pub}]
assertion:
  issuer: https://rampart.bench
  key_file: $work/assertion.key
rate_limiting:
  redis: {addresses: ["127.0.0.1:$P_REDIS"]}
routes:
  - id: waf
    prefix: /waf
    upstream: up
    public: true
    skip_assertion: true
    waf: {paranoia: 1}
    overload: {off: true}   # throughput at saturation is measured here; shedding in bench/overload.sh
    race: {action: off}     # wrk repeats one POST: not a race to flag
  - id: oas
    prefix: /oas
    upstream: up
    public: true
    skip_assertion: true
    openapi: {spec: $work/items.yaml}
  - id: rl-local
    prefix: /rl-local
    upstream: up
    public: true
    skip_assertion: true
    rate_limits: [{key: [client_ip], rate: 1000000, per: 1s, store: local}]
  - id: rl-redis
    prefix: /rl-redis
    upstream: up
    public: true
    skip_assertion: true
    rate_limits: [{key: [client_ip], rate: 1000000, per: 1s, store: redis, on_store_error: fail_closed}]
  - id: jwt
    prefix: /auth
    upstream: up
    auth: {jwt: [bench]}
    authorize: any_authenticated
    skip_assertion: true
  - id: chain
    prefix: /chain
    upstream: up
    auth: {jwt: [bench]}
    authorize: {scopes_all: ["bench:read"]}
  - id: all
    prefix: /
    upstream: up
    public: true
    skip_assertion: true
    overload: {off: $OVERLOAD_OFF}
access_log:
  output: $work/rampart-access.log
YAML
$PIN "$work/rampart" run --config "$work/rampart.yaml" --watch=false 2>"$work/rampart.err" &
pids+=($!)
PID_RAMPART=$!

# A second instance with assertion reuse (one signature per caller and
# request shape per 5 s), measured with its own CPU counters.
sed -e "s/127.0.0.1:$P_RAMPART/127.0.0.1:$P_RAMPART2/" -e "s#  key_file: $work/assertion.key#  key_file: $work/assertion.key\n  reuse: 5s#" \
	-e "s#output: $work/rampart-access.log#output: $work/rampart2-access.log#" "$work/rampart.yaml" >"$work/rampart2.yaml"
$PIN "$work/rampart" run --config "$work/rampart2.yaml" --watch=false 2>"$work/rampart2.err" &
pids+=($!)
PID_RAMPART2=$!

# Observability off and on: the same config without access log and event
# stream, and with access log, event stream, metrics (admin listener) and
# tracing at the default 1% sampling (OTLP/HTTP to the upstream, which
# answers 200); rampart-obs-on10 samples 10% of traces.
sed -e "s/127.0.0.1:$P_RAMPART/127.0.0.1:$P_RAMPART3/" -e "s#^access_log:#access_log:\n  enabled: false#" "$work/rampart.yaml" >"$work/rampart3.yaml"
printf 'security_events: {enabled: false}\n' >>"$work/rampart3.yaml"
sed -e "s/127.0.0.1:$P_RAMPART/127.0.0.1:$P_RAMPART4/" -e "s#output: $work/rampart-access.log#output: $work/rampart4-access.log#" "$work/rampart.yaml" >"$work/rampart4.yaml"
cat >>"$work/rampart4.yaml" <<YAML
security_events: {output: $work/rampart4-events.log}
admin: {address: "127.0.0.1:$P_ADMIN", token: "\${env:BENCH_ADMIN_TOKEN}"}
tracing: {endpoint: "127.0.0.1:$P_UP", allow_plaintext: true}   # default sampling: 1%
YAML
sed -e "s/127.0.0.1:$P_RAMPART4/127.0.0.1:$P_RAMPART5/" -e "s/127.0.0.1:$P_ADMIN/127.0.0.1:$P_ADMIN5/" -e "s#rampart4-#rampart5-#g" \
	-e "s#allow_plaintext: true}   \# default sampling: 1%#allow_plaintext: true, sample_ratio: 0.1}#" "$work/rampart4.yaml" >"$work/rampart5.yaml"
grep -q "sample_ratio: 0.1" "$work/rampart5.yaml"
export BENCH_ADMIN_TOKEN=bench-admin-token-0123456789abcdef0123
for n in 3 4 5; do
	$PIN "$work/rampart" run --config "$work/rampart$n.yaml" --watch=false 2>"$work/rampart$n.err" &
	pids+=($!)
	eval "PID_RAMPART$n=\$!"
done

$PIN "$work/bareproxy" -addr "127.0.0.1:$P_BARE" -target "http://127.0.0.1:$P_UP" &
pids+=($!)
PID_BARE=$!

nginx_conf "$P_NGINX" 4096
taskset -c "$SUT_CPU" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
PID_NGINX=$!

modsec_conf "$P_MODSEC" 4096 1
taskset -c "$SUT_CPU" nginx -p "$work/modsec" -e "$work/modsec/error.log" -c "$work/modsec/nginx.conf" -g 'daemon off;' &
pids+=($!)
PID_MODSEC=$!

cat >"$work/Caddyfile" <<CADDY
{
	admin off
	auto_https off
}
http://127.0.0.1:$P_CADDY {
	reverse_proxy 127.0.0.1:$P_UP
}
CADDY
HOME=$work XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work $PIN caddy run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
pids+=($!)
PID_CADDY=$!

port_of() { case $1 in direct) echo "$P_UP";; rampart|rampart-jwt|rampart-chain|rampart-rl-local|rampart-rl-redis|rampart-waf|rampart-waf-json|rampart-openapi) echo "$P_RAMPART";; modsec|modsec-json) echo "$P_MODSEC";; rampart-chain-reuse) echo "$P_RAMPART2";; rampart-obs-off) echo "$P_RAMPART3";; rampart-obs-on) echo "$P_RAMPART4";; rampart-obs-on10) echo "$P_RAMPART5";; bare) echo "$P_BARE";; nginx) echo "$P_NGINX";; caddy) echo "$P_CADDY";; esac; }
pid_of() { case $1 in direct) echo "";; rampart|rampart-jwt|rampart-chain|rampart-rl-local|rampart-rl-redis|rampart-waf|rampart-waf-json|rampart-openapi) echo "$PID_RAMPART";; modsec|modsec-json) echo "$PID_MODSEC";; rampart-chain-reuse) echo "$PID_RAMPART2";; rampart-obs-off) echo "$PID_RAMPART3";; rampart-obs-on) echo "$PID_RAMPART4";; rampart-obs-on10) echo "$PID_RAMPART5";; bare) echo "$PID_BARE";; nginx) echo "$PID_NGINX";; caddy) echo "$PID_CADDY";; esac; }

path_of() { case $1 in rampart-jwt) echo "/auth/x";; rampart-chain|rampart-chain-reuse) echo "/chain/x";; rampart-rl-local) echo "/rl-local/x";; rampart-rl-redis) echo "/rl-redis/x";; rampart-waf|modsec) echo "/waf/items?q=book";; rampart-waf-json|modsec-json) echo "/waf/orders";; rampart-openapi) echo "/oas/items?q=book&limit=20";; *) echo "/";; esac; }
# wrk_auth: header arguments for a target.
hdr_of() { case $1 in rampart-jwt|rampart-chain|rampart-chain-reuse) echo "Authorization: Bearer $TOKEN";; *) echo "X-Bench: 1";; esac; }
# body_of: the POST body file of a target (none: it sends GETs).
body_of() { case $1 in *-json) echo "bench/order.json";; *) echo "";; esac; }
cat >"$work/post.lua" <<'LUA'
local f = assert(io.open("bench/order.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
LUA
# wrk_args TARGET: wrk's arguments for a target after the connection ones.
wrk_args() {
	if [ -n "$(body_of "$1")" ]; then echo "-s $work/post.lua"; fi
}
# curl_args TARGET: the same request for curl.
curl_args() {
	local b
	b=$(body_of "$1")
	if [ -n "$b" ]; then echo "-H Content-Type:application/json --data-binary @$b"; fi
}

for t in $TARGETS; do
	for i in $(seq 1 100); do
		curl -fsS -o /dev/null $(curl_args "$t") -H "$(hdr_of "$t")" "http://127.0.0.1:$(port_of "$t")$(path_of "$t")" 2>/dev/null && break
		sleep 0.1
		[ "$i" = 100 ] && { echo "$t did not come up" >&2; cat "$work"/*.err "$work"/*.log 2>/dev/null >&2; exit 1; }
	done
done

# cpu_ticks PID: utime+stime of PID and its children processes (nginx
# workers), in clock ticks.
cpu_ticks() {
	local root=$1 total=0 p
	for p in $root $(pgrep -P "$root" 2>/dev/null || true); do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $total
}
HZ=$(getconf CLK_TCK)

to_us() { # "1.23ms" -> microseconds
	awk -v v="$1" 'BEGIN{ n=v+0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n*1000; else if (v ~ /s$/) print n*1000000; else print n }'
}

bad=0
results="$work/results.tsv"
: >"$results"
echo "warming up..." >&2
for t in $TARGETS; do taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d2s $(wrk_args "$t") -H "$(hdr_of "$t")" "http://127.0.0.1:$(port_of "$t")$(path_of "$t")" >/dev/null; done

for r in $(seq 1 "$ROUNDS"); do
	for t in $TARGETS; do
		pid=$(pid_of "$t")
		before=0; [ -n "$pid" ] && before=$(cpu_ticks "$pid")
		out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency $(wrk_args "$t") -H "$(hdr_of "$t")" "http://127.0.0.1:$(port_of "$t")$(path_of "$t")")
		after=0; [ -n "$pid" ] && after=$(cpu_ticks "$pid")
		rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
		p50=$(to_us "$(awk '$1=="50%" {print $2}' <<<"$out")")
		p99=$(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")
		errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
		if [ -n "$errs" ]; then
			echo "WARNING: $t: $errs (this run is not a valid measurement)" >&2
			bad=1
		fi
		cpu_us=$(awk -v d=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN{ if (n>0) printf "%.1f", d/hz*1e6/n; else print 0 }')
		printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$r" "$t" "$rps" "$p50" "$p99" "$cpu_us" >>"$results"
		printf "round %s %-8s %10s req/s  p50 %8sus  p99 %8sus  cpu %6sus/req %s\n" "$r" "$t" "$rps" "$p50" "$p99" "$cpu_us" "$errs" >&2
	done
done

latres="$work/latency.tsv"
: >"$latres"
echo "latency at a fixed $RATE req/s over $CONNS connections..." >&2
for r in $(seq 1 "$ROUNDS"); do
	for t in $TARGETS; do
		case " $NO_LATENCY " in *" $t "*) continue;; esac
		if ! out=$(taskset -c "$WRK_CPU" "$work/latency" -url "http://127.0.0.1:$(port_of "$t")$(path_of "$t")" -header "$(hdr_of "$t")" -body "$(body_of "$t")" -rate "$RATE" -conns "$CONNS" -duration "${DURATION}s"); then
			echo "WARNING: $t: errors in the latency run: $out" >&2
			bad=1
		fi
		read -r n e p50 p90 p99 p999 <<<"$out"
		printf "%s\t%s\t%s\t%s\t%s\n" "$r" "$t" "$p50" "$p99" "$p999" >>"$latres"
		printf "latency round %s %-8s p50 %6sus  p99 %6sus  p99.9 %6sus\n" "$r" "$t" "$p50" "$p99" "$p999" >&2
	done
done

python3 - "$results" "$TARGETS" "$latres" "$RATE" "$CONNS" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
targets = sys.argv[2].split()
med = {}
for t in targets:
    rs = [r for r in rows if r[1] == t]
    med[t] = {k: statistics.median(float(r[i]) for r in rs) for k, i in (("rps", 2), ("p50", 3), ("p99", 4), ("cpu", 5))}
print(f"\nmedians of {len(rows)//len(targets)} interleaved rounds (wrk -t1 -c{sys.argv[5]}, 1 KiB responses)\n")
print(f"| target | req/s | p50 µs | p99 µs | proxy CPU µs/req | req/s vs nginx | CPU vs bare Go proxy |")
print(f"|---|---:|---:|---:|---:|---:|---:|")
for t in targets:
    m = med[t]
    vs_nginx = f"{m['rps']/med['nginx']['rps']:.2f}×" if "nginx" in med else "-"
    vs_bare = f"{m['cpu']/med['bare']['cpu']:.2f}×" if "bare" in med and t != "direct" and med['bare']['cpu'] > 0 else "-"
    cpu = f"{m['cpu']:.1f}" if t != "direct" else "-"
    print(f"| {t} | {m['rps']:.0f} | {m['p50']:.0f} | {m['p99']:.0f} | {cpu} | {vs_nginx} | {vs_bare} |")
for t in ("rampart-rl-local", "rampart-rl-redis", "rampart-waf", "rampart-waf-json", "rampart-openapi"):
    if "rampart" in med and t in med:
        print(f"{t}: {med[t]['rps']/med['rampart']['rps']:.2f}× the pass-through req/s; proxy CPU {med[t]['cpu']:.1f} vs {med['rampart']['cpu']:.1f} µs/req")
for a, b in (("rampart-waf", "modsec"), ("rampart-waf-json", "modsec-json")):
    if a in med and b in med:
        print(f"{a} vs nginx + ModSecurity + CRS on the same request: proxy CPU {med[a]['cpu']:.1f} vs {med[b]['cpu']:.1f} µs/req ({med[a]['cpu']/med[b]['cpu']:.2f}×), req/s {med[a]['rps']/med[b]['rps']:.2f}×")
if "rampart" in med and "rampart-chain" in med:
    print(f"full chain (JWT cached + policy + signed EdDSA assertion): {med['rampart-chain']['rps']/med['rampart']['rps']:.2f}× the pass-through req/s; proxy CPU {med['rampart-chain']['cpu']:.1f} vs {med['rampart']['cpu']:.1f} µs/req")
if "rampart" in med and "rampart-chain-reuse" in med:
    print(f"full chain with assertion reuse (5 s): {med['rampart-chain-reuse']['rps']/med['rampart']['rps']:.2f}× the pass-through req/s; proxy CPU {med['rampart-chain-reuse']['cpu']:.1f} vs {med['rampart']['cpu']:.1f} µs/req")
def paired(a, b):
    # Median over rounds of b's req/s over a's in the same round: the
    # targets of a round run back to back, so a round's ratio cancels
    # most of the VM's slow drifts.
    ra = {r[0]: float(r[2]) for r in rows if r[1] == a}
    return statistics.median(float(r[2]) / ra[r[0]] for r in rows if r[1] == b and r[0] in ra)
if "rampart-obs-off" in med and "rampart-obs-on" in med:
    off, on = med["rampart-obs-off"], med["rampart-obs-on"]
    print(f"full observability (access log, events, metrics, tracing at the default 1%): {paired('rampart-obs-off', 'rampart-obs-on'):.3f}× the req/s without any (median of per-round ratios); proxy CPU {on['cpu']:.1f} vs {off['cpu']:.1f} µs/req")
    if "rampart-obs-on10" in med:
        on10 = med["rampart-obs-on10"]
        print(f"the same with tracing sampled at 10%: {paired('rampart-obs-off', 'rampart-obs-on10'):.3f}×; proxy CPU {on10['cpu']:.1f} µs/req")
if "rampart" in med and "rampart-jwt" in med:
    print(f"\nauthenticated route (ES256, cached token): {med['rampart-jwt']['rps']/med['rampart']['rps']:.2f}× the pass-through req/s; proxy CPU {med['rampart-jwt']['cpu']:.1f} vs {med['rampart']['cpu']:.1f} µs/req")
lat = [l.rstrip("\n").split("\t") for l in open(sys.argv[3]) if l.strip()]
lm = {}
for t in targets:
    rs = [r for r in lat if r[1] == t]
    if rs:
        lm[t] = {k: statistics.median(float(r[i]) for r in rs) for k, i in (("p50", 2), ("p99", 3), ("p999", 4))}
print(f"\nlatency at a fixed {sys.argv[4]} req/s over {sys.argv[5]} connections (open loop, medians)\n")
print("| target | p50 µs | p99 µs | p99.9 µs | added p50 | added p99 |")
print("|---|---:|---:|---:|---:|---:|")
for t in targets:
    if t not in lm:
        continue
    m = lm[t]
    add50 = f"{m['p50']-lm['direct']['p50']:+.0f}" if "direct" in lm and t != "direct" else "-"
    add99 = f"{m['p99']-lm['direct']['p99']:+.0f}" if "direct" in lm and t != "direct" else "-"
    print(f"| {t} | {m['p50']:.0f} | {m['p99']:.0f} | {m['p999']:.0f} | {add50} | {add99} |")
PY
if [ "$bad" = 1 ]; then
	echo "some runs had errors; see the warnings above" >&2
	exit 1
fi
