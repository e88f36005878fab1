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

# modsec_conf PORT CONNECTIONS PARANOIA: nginx with libmodsecurity3 and the
# same OWASP CRS rule files rampart embeds (copied from its Go module), set
# up as rampart's waf stage sets up Coraza: request rules only, blocking
# at the given paranoia level, anomaly threshold 5, audit log off,
# request bodies inspected, JSON bodies parsed, at most 256 arguments.
# Its files are in $work/modsec. Debian's libnginx-mod-http-modsecurity
# is installed when missing.
modsec_conf() {
	local mod=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
	if [ ! -e "$mod" ]; then
		echo "installing nginx's ModSecurity module (Debian package)..." >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq libnginx-mod-http-modsecurity >/dev/null
	fi
	local crs d="$work/modsec"
	crs=$(go list -m -f '{{.Dir}}' github.com/corazawaf/coraza-coreruleset/v4)/rules
	mkdir -p "$d/crs"
	cp "$crs"/@owasp_crs/REQUEST-*.conf "$crs"/@owasp_crs/*.data "$d/crs/"
	cp "$crs/@crs-setup.conf.example" "$d/crs-setup.conf"
	# libmodsecurity 3.0.9 (Debian 12) expands no macros in an operator's
	# argument: the threshold is written in, as the SecAction below sets it.
	# Nor does it take a chained rule without actions (one in CRS 4).
	sed -i -e 's/"@ge %{tx.inbound_anomaly_score_threshold}"/"@ge 5"/' \
		-e 's/^\( *SecRule TX:EARLY_BLOCKING "@eq 1"\)$/\1 "t:none"/' "$d/crs/REQUEST-949-BLOCKING-EVALUATION.conf"
	cat >"$d/main.conf" <<MODSEC
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 1048576
SecRequestBodyNoFilesLimit 1048576
SecRequestBodyLimitAction ProcessPartial
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"
SecResponseBodyAccess Off
SecAuditEngine Off
SecArgumentsLimit 256
SecRule &ARGS "@gt 255" "id:10001,phase:1,deny,status:403,t:none,log,msg:'Too many arguments'"
SecRule &ARGS "@gt 255" "id:10002,phase:2,deny,status:403,t:none,log,msg:'Too many arguments'"
Include $d/crs-setup.conf
SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=$3"
SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"
Include $d/crs/REQUEST-*.conf
MODSEC
	cat >"$d/nginx.conf" <<NGINX
load_module $mod;
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $2; }
http {
  access_log $d/access.log combined buffer=64k flush=1s;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  client_body_temp_path $d;
  client_body_buffer_size 1m;
  client_max_body_size 1m;
  proxy_temp_path $d;
  fastcgi_temp_path $d;
  uwsgi_temp_path $d;
  scgi_temp_path $d;
  upstream up { server 127.0.0.1:$P_UP; keepalive 64; }
  server {
    listen 127.0.0.1:$1 backlog=4096;
    modsecurity on;
    modsecurity_rules_file $d/main.conf;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
}
