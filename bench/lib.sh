# Shared by the bench scripts (sourced): the load settings every script
# reads, a scratch directory and the processes to stop, both cleaned up
# on exit, and free loopback ports.
#
#   CONNS    wrk connections (default 50)
#   WRK_CPU  the CPU wrk is pinned to (default 0)
#   SUT_CPU  the CPU the gateway and the upstream share (default 1)
CONNS=${CONNS:-50}
WRK_CPU=${WRK_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# need_wrk installs wrk and taskset from Debian when missing.
need_wrk() {
	command -v wrk >/dev/null 2>&1 && command -v taskset >/dev/null 2>&1 && return
	echo "installing wrk (Debian package)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq wrk util-linux >/dev/null
}

# start_upstream starts the benchmark service pinned to $SUT_CPU on a free
# port, built into $work, and sets P_UP.
start_upstream() {
	go build -o "$work/upstream" ./bench/upstream
	P_UP=$(free_port)
	taskset -c "$SUT_CPU" env GOMAXPROCS=1 "$work/upstream" -addr "127.0.0.1:$P_UP" &
	pids+=($!)
}

# nginx_conf PORT CONNECTIONS: the nginx reverse proxy every script
# compares with, on 127.0.0.1:PORT in front of the upstream ($P_UP), one
# worker, CONNECTIONS connections at most, its files in $work/nginx.
nginx_conf() {
	mkdir -p "$work/nginx"
	cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $2; }
http {
  access_log $work/nginx/access.log combined buffer=64k flush=1s;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  upstream up { server 127.0.0.1:$P_UP; keepalive 64; }
  server {
    listen 127.0.0.1:$1 backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
}
