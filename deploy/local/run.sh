#!/usr/bin/env bash
# Two mcp-authz replicas sharing one Redis behind nginx, on loopback, as a cluster would run
# them. The demo's authorization server issues the tokens. Shows that a token verified by one
# replica is answered by the other from Redis, then leaves everything stopped.
#   deploy/local/run.sh            (needs go, redis-server, nginx, curl)
set -euo pipefail
cd "$(dirname "$0")/../.."
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
FRONT=127.0.0.1:18080 AS=127.0.0.1:18093 REDIS_PORT=18379 UP=127.0.0.1:18030
A_GRPC=127.0.0.1:18191 A_HTTP=127.0.0.1:18192 B_GRPC=127.0.0.1:18291 B_HTTP=127.0.0.1:18292
RESOURCE=http://$FRONT/mcp

go build -o "$W/mcp-authz" ./cmd/mcp-authz
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --dir "$W" >"$W/redis.log" 2>&1 & pids+=($!)
# The demo, used here for its authorization server only (its own mcp-authz listens aside).
"$W/mcp-authz" demo -grpc 127.0.0.1:18991 -http 127.0.0.1:18992 -as $AS -resource "$RESOURCE" >"$W/demo.log" 2>&1 & pids+=($!)
for i in $(seq 100); do curl -sf http://$AS/jwks >/dev/null && break; sleep 0.1; done

for r in A B; do
  g=${r}_GRPC h=${r}_HTTP
  cat >"$W/$r.yaml" <<Y
listen: { grpc: ${!g}, http: ${!h} }
log: { level: info, format: text }
dev: { allow_http: true }
cache:
  secret: { env: MCP_AUTHZ_CACHE_SECRET }
  redis: { addrs: [127.0.0.1:$REDIS_PORT] }
issuers: [ { issuer: "http://$AS" } ]
resources:
  - resource: $RESOURCE
    scopes: { required: [mcp:tools] }
Y
  MCP_AUTHZ_CACHE_SECRET=$(printf 'local-demo-cache-secret-%.0s' 1 2) "$W/mcp-authz" serve --config "$W/$r.yaml" >"$W/$r.log" 2>&1 & pids+=($!)
done
for h in $A_HTTP $B_HTTP; do for i in $(seq 100); do curl -sf http://$h/healthz >/dev/null && break; sleep 0.1; done; done

# nginx: the shipped config, its mcp-authz upstream balanced over both replicas (round robin),
# and a stand-in MCP server that answers 200.
site=$(sed -e "s/127.0.0.1:8080/$FRONT/" -e "s/127.0.0.1:3000/$UP/" \
  -e "s/upstream mcp_authz  { server 127.0.0.1:9192; }/upstream mcp_authz { server $A_HTTP; server $B_HTTP; }/" deploy/nginx/mcp-authz.conf)
cat >"$W/nginx.conf" <<N
daemon off; master_process off; pid $W/nginx.pid; error_log $W/nginx-error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $W/b; proxy_temp_path $W/p; fastcgi_temp_path $W/f; uwsgi_temp_path $W/u; scgi_temp_path $W/s;
  server { listen $UP; location / { default_type text/plain; return 200 "upstream: subject=\$http_x_auth_subject\n"; } }
$site
}
N
"$NGINX" -c "$W/nginx.conf" -p "$W" & pids+=($!)
for i in $(seq 50); do curl -s -o /dev/null http://$FRONT/ && break; sleep 0.1; done

TOKEN=$(curl -s -u demo:demo-secret -d grant_type=client_credentials -d scope=mcp:tools \
  --data-urlencode resource=$RESOURCE http://$AS/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
echo "no token:   $(curl -s -o /dev/null -w '%{http_code} %header{www-authenticate}' -X POST http://$FRONT/mcp)"
for i in 1 2 3 4; do
  echo "with token: $(curl -s -w ' (%{http_code})' -X POST -H "Authorization: Bearer $TOKEN" http://$FRONT/mcp | tr -d '\n')"
done
count() { curl -s "http://$1/metrics" | awk -v k="$2" 'index($0,k)==1 {print $2}'; }
a_allow=$(count $A_HTTP 'mcp_authz_decisions_total{decision="allow"') b_allow=$(count $B_HTTP 'mcp_authz_decisions_total{decision="allow"')
a_keys=$(count $A_HTTP 'mcp_authz_idp_requests_total{issuer="http://'"$AS"'",kind="keys",outcome="2xx"}')
b_redis=$(count $B_HTTP 'mcp_authz_cache_requests_total{result="hit",tier="redis"}')
a_redis=$(count $A_HTTP 'mcp_authz_cache_requests_total{result="hit",tier="redis"}')
echo "replica A: ${a_allow:-0} allowed, Redis hits ${a_redis:-0}; replica B: ${b_allow:-0} allowed, Redis hits ${b_redis:-0}"
echo "Redis keys: $(redis-cli -p $REDIS_PORT --scan --pattern 'mcp-authz:*' | wc -l)"
if [ "${a_allow:-0}" -ge 1 ] && [ "${b_allow:-0}" -ge 1 ] && [ $(( ${a_redis:-0} + ${b_redis:-0} )) -ge 1 ]; then
  echo "PASS: both replicas answered; the one that did not verify the token first found it in Redis"
else
  echo "FAIL"; tail -5 "$W"/*.log; exit 1
fi
