#!/usr/bin/env bash
# TLS on one core: full handshakes per second (ECDSA P-256 and RSA-2048
# certificates) and resumed-session requests per second, Rampart next to
# nginx with the same certificates, in one run. Each server is pinned to
# $SUT_CPU (Rampart with GOMAXPROCS=1, nginx with one worker); the client
# runs on $WRK_CPU.
#
#   bench/tls.sh            (DURATION=5s CONNS=16 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-16}
. bench/lib.sh
DURATION=${DURATION:-5s}
need_wrk
if ! command -v nginx >/dev/null 2>&1; then
	echo "installing nginx (Debian package)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq nginx-light >/dev/null
fi
go build -o "$work/rampart" ./cmd/rampart
go build -o "$work/tlshs" ./bench/tlshs
for kind in ec rsa; do
	if [ $kind = ec ]; then alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else alg=(-newkey rsa:2048); fi
	openssl req -x509 "${alg[@]}" -nodes -days 30 -subj "/CN=api.bench.test" -addext "subjectAltName=DNS:api.bench.test" \
		-keyout "$work/$kind.key" -out "$work/$kind.crt" 2>/dev/null
done
P_REC=$(free_port) P_RRSA=$(free_port) P_NEC=$(free_port) P_NRSA=$(free_port)
cat >"$work/rampart.yaml" <<YAML
version: 1
listeners:
  - {name: ec, address: 127.0.0.1:$P_REC, tls: {cert_file: $work/ec.crt, key_file: $work/ec.key}}
  - {name: rsa, address: 127.0.0.1:$P_RRSA, tls: {cert_file: $work/rsa.crt, key_file: $work/rsa.key}}
upstreams: [{name: unused, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{id: unused, prefix: /unused, upstream: unused, public: true}]
docs: {listeners: [ec, rsa], path: /bench}   # a small JSON document Rampart answers itself
YAML
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/nginx/b; proxy_temp_path $work/nginx/p; fastcgi_temp_path $work/nginx/f; uwsgi_temp_path $work/nginx/u; scgi_temp_path $work/nginx/s;
	ssl_protocols TLSv1.2 TLSv1.3;
	server { listen 127.0.0.1:$P_NEC ssl; ssl_certificate $work/ec.crt; ssl_certificate_key $work/ec.key; location / { default_type application/json; return 200 '{"openapi":"3.1.0"}'; } }
	server { listen 127.0.0.1:$P_NRSA ssl; ssl_certificate $work/rsa.crt; ssl_certificate_key $work/rsa.key; location / { default_type application/json; return 200 '{"openapi":"3.1.0"}'; } }
}
NGINX
taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$work/rampart" run --config "$work/rampart.yaml" --watch=false >"$work/rampart.out" 2>"$work/rampart.log" &
pids+=($!)
taskset -c "$SUT_CPU" nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
for p in $P_REC $P_RRSA $P_NEC $P_NRSA; do
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
rampart_pid=${pids[-2]} nginx_pid=${pids[-1]}
# cpu PID...: the CPU seconds (user + system) the processes used so far.
cpu() { for p in "$@"; do cat "/proc/$p/stat"; done | awk -v hz="$(getconf CLK_TCK)" '{ s += $14 + $15 } END { printf "%.3f", s / hz }'; }
nginx_procs() { echo "$nginx_pid" $(cat /proc/"$nginx_pid"/task/*/children); }
# run MODE PORT LABEL PIDS...: the rate the client saw, and operations per
# CPU-second of the server (independent of whether the client or the
# server was the bottleneck).
run() {
	local mode=$1 port=$2 label=$3; shift 3
	local before after out n
	before=$(cpu "$@")
	out=$(taskset -c "$WRK_CPU" "$work/tlshs" -addr "127.0.0.1:$port" -name api.bench.test -mode "$mode" -conns "$CONNS" -duration "$DURATION")
	after=$(cpu "$@")
	n=$(sed -E 's/.*\(([0-9]+) ok.*/\1/' <<<"$out")
	printf '%-20s %-7s %8s/s seen by the client   %8.0f per server CPU-second   (%s resumed)\n' "$label" "$mode" \
		"$(sed -E 's/.*: ([0-9]+)\/s.*/\1/' <<<"$out")" "$(awk -v n="$n" -v a="$after" -v b="$before" 'BEGIN { print n / (a - b) }')" \
		"$(sed -E 's/.* ([0-9]+) resumed.*/\1/' <<<"$out")"
}
echo "# one server core ($SUT_CPU), client on $WRK_CPU; $CONNS clients; $DURATION each"
run full "$P_REC" "rampart ecdsa-p256" "$rampart_pid"
run full "$P_NEC" "nginx   ecdsa-p256" $(nginx_procs)
run full "$P_RRSA" "rampart rsa-2048" "$rampart_pid"
run full "$P_NRSA" "nginx   rsa-2048" $(nginx_procs)
run resume "$P_REC" "rampart ecdsa-p256" "$rampart_pid"
run resume "$P_NEC" "nginx   ecdsa-p256" $(nginx_procs)
