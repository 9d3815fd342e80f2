#!/usr/bin/env bash
# Two mcp-authz replicas sharing one Redis behind nginx, on loopback, as a cluster runs them:
#
#   curl ──▶ nginx (deploy/nginx/mcp-authz.conf) ──auth_request, round robin──▶ replica A ─┐
#              └──▶ stand-in MCP server (nginx, 200)                          ▶ replica B ─┤
#                                     Redis (shared cache, revocation pub/sub) ◀───────────┤
#                          demo authorization server (tokens, introspection) ◀─────────────┘
#
# It builds mcp-authz and the demo authorization server (deploy/local/as), starts everything
# on free loopback ports and shows, with each replica's /metrics and the AS's request counts:
#   1. an opaque token's first Check, on one replica, introspects once;
#   2. the other replica answers the same token from Redis, without introspecting;
#   3. a token revoked at the AS stays allowed from the cache (up to cache.max_ttl);
#   4. POST /admin/revoke on replica A takes it out of replica B too (Redis pub/sub).
# Prints PASS or FAIL per check and a summary; exit status 0 only when every check passed.
# Stops everything it started on exit. Needs go, redis-server, nginx and curl.
# KEEP=1 keeps the logs and generated configurations (they are always kept on failure).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

die() { echo "run.sh: $*" >&2; exit 2; }
command -v go >/dev/null || die "go is missing"
command -v curl >/dev/null || die "curl is missing"
command -v redis-server >/dev/null || die "redis-server is missing: apt-get install -y redis-server"
NGINX=$(command -v nginx || true)
if [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ]; then NGINX=/usr/sbin/nginx; fi
[ -n "$NGINX" ] || die "nginx is missing: apt-get install -y nginx"

work=$(mktemp -d "${TMPDIR:-/tmp}/mcp-authz-local.XXXXXX")
. "$root/deploy/lib/proc.sh"
passed=0 failed=0 result=1 # 0 only once every check has passed
cleanup() {
  stop_started
  if [ "$result" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "logs and configurations: $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # check DESCRIPTION CONDITION...
  local what=$1; shift
  if "$@"; then echo "  PASS  $what"; passed=$((passed + 1)); else echo "  FAIL  $what"; failed=$((failed + 1)); fi
}
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

read -r FRONT UP AS REDIS A_GRPC A_HTTP B_GRPC B_HTTP < <(free_ports 8)
RESOURCE="http://127.0.0.1:$FRONT/mcp"
ISSUER="http://127.0.0.1:$AS"
# Secrets, drawn per run and handed over in the environment, as a Secret would be.
export MCP_AUTHZ_CACHE_SECRET MCP_AUTHZ_ADMIN_TOKEN MCP_AUTHZ_INTROSPECTION_SECRET
MCP_AUTHZ_CACHE_SECRET=$(random_hex 32) MCP_AUTHZ_ADMIN_TOKEN=$(random_hex 16) MCP_AUTHZ_INTROSPECTION_SECRET=$(random_hex 16)

echo "== building mcp-authz and the demo authorization server"
go build -o "$work/mcp-authz" ./cmd/mcp-authz
go build -o "$work/as" ./deploy/local/as

echo "== starting redis-server :$REDIS, AS :$AS, replica A :$A_GRPC/:$A_HTTP, replica B :$B_GRPC/:$B_HTTP, nginx :$FRONT"
start "$work/redis.out" redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log"
wait_port redis-server "$REDIS" "$last" "$work/redis.log"

start "$work/as.log" "$work/as" -addr "127.0.0.1:$AS" -resource "$RESOURCE"
wait_port "authorization server" "$AS" "$last" "$work/as.log"

# One configuration for both replicas but their listeners: the same Redis, the same cache
# secret (so each can read and authenticate the other's entries), the same issuer.
for r in A B; do
  g=${r}_GRPC h=${r}_HTTP
  cat >"$work/$r.yaml" <<EOF
listen: { grpc: 127.0.0.1:${!g}, http: 127.0.0.1:${!h} }
log: { level: info, format: text }
dev: { allow_http: true }            # the demo AS is plain HTTP on loopback
cache:
  secret: { env: MCP_AUTHZ_CACHE_SECRET }
  redis: { addrs: [127.0.0.1:$REDIS] }
admin:
  token: { env: MCP_AUTHZ_ADMIN_TOKEN }
issuers:
  - issuer: $ISSUER
    introspection:
      # Given, not discovered: discovery's metadata fetch would count as an introspection-kind
      # IdP call in /metrics, and this run counts introspections.
      endpoint: $ISSUER/introspect
      client_id: mcp-authz
      client_secret: { env: MCP_AUTHZ_INTROSPECTION_SECRET }
resources:
  - resource: $RESOURCE
    scopes: { required: [mcp:tools], supported: [mcp:tools, mcp:read] }
EOF
  start "$work/$r.log" "$work/mcp-authz" serve --config "$work/$r.yaml"
  wait_port "replica $r" "${!h}" "$last" "$work/$r.log"
done

# nginx: the shipped configuration, its mcp_authz upstream balanced over both replicas (round
# robin), the answering replica reported in X-Authz-Replica; a stand-in MCP server that
# answers 200 with the identity nginx forwarded.
site=$(sed -e "s/listen 127.0.0.1:8080;/listen 127.0.0.1:$FRONT;/" \
  -e "s/server 127.0.0.1:3000;/server 127.0.0.1:$UP;/" \
  -e "s/upstream mcp_authz  { server 127.0.0.1:9192; }/upstream mcp_authz { server 127.0.0.1:$A_HTTP; server 127.0.0.1:$B_HTTP; }/" \
  -e 's/^\( *\)auth_request \/_mcp_authz;/&\n\1auth_request_set $authz_replica $upstream_addr;\n\1add_header X-Authz-Replica $authz_replica always;/' \
  deploy/nginx/mcp-authz.conf)
for want in "listen 127.0.0.1:$FRONT;" "server 127.0.0.1:$UP;" "server 127.0.0.1:$B_HTTP;" 'add_header X-Authz-Replica'; do
  grep -qF "$want" <<<"$site" || die "deploy/nginx/mcp-authz.conf changed: could not set '$want'"
done
cat >"$work/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
pid $work/nginx.pid; error_log $work/nginx-error.log warn;
events { worker_connections 64; }
http {
  access_log $work/nginx-access.log;
  client_body_temp_path $work/b; proxy_temp_path $work/p; fastcgi_temp_path $work/f; uwsgi_temp_path $work/u; scgi_temp_path $work/s;
  server { listen 127.0.0.1:$UP; location / { default_type text/plain; return 200 "MCP server: subject=\$http_x_auth_subject scopes=\$http_x_auth_scopes\n"; } }
$site
}
EOF
"$NGINX" -t -q -c "$work/nginx.conf" -p "$work" 2>"$work/nginx-t.log" || { cat "$work/nginx-t.log"; die "nginx refused the configuration"; }
start "$work/nginx.log" "$NGINX" -c "$work/nginx.conf" -p "$work"
wait_port nginx "$FRONT" "$last" "$work/nginx.log"

# --- helpers reading what each process counted -----------------------------------------------
# metric PORT PREFIX [CONTAINS]: sum of the series of replica PORT whose name and labels start
# with PREFIX and contain CONTAINS.
metric() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v p="$2" -v c="${3:-}" \
    'index($1, p) == 1 && index($1, c) { s += $2 } END { printf "%d\n", s }'
}
introspections() { metric "$1" 'mcp_authz_idp_requests_total{' 'kind="introspection"'; }
redis_hits() { metric "$1" 'mcp_authz_cache_requests_total{result="hit",tier="redis"}'; }
l1_hits() { metric "$1" 'mcp_authz_cache_requests_total{result="hit",tier="l1"}'; }
as_introspections() { curl -sf "$ISSUER/counts" | sed -E 's/.*"Introspect":([0-9]+).*/\1/'; }
replica_name() { case "$1" in "127.0.0.1:$A_HTTP") echo A ;; "127.0.0.1:$B_HTTP") echo B ;; *) echo "?($1)" ;; esac; }
# call [TOKEN]: one request to the MCP server through nginx; sets status, replica, body.
call() {
  local auth=()
  [ -n "${1:-}" ] && auth=(-H "Authorization: Bearer $1")
  local out
  out=$(curl -s -D "$work/headers" -o "$work/body" -w '%{http_code}' -X POST "${auth[@]}" "http://127.0.0.1:$FRONT/mcp")
  status=$out
  replica=$(replica_name "$(tr -d '\r' <"$work/headers" | awk -F': ' 'tolower($1) == "x-authz-replica" { print $2 }')")
  body=$(tr -d '\n' <"$work/body")
  challenge=$(tr -d '\r' <"$work/headers" | awk -F': ' 'tolower($1) == "www-authenticate" { print $2 }')
}
port_of() { if [ "$1" = A ]; then echo "$A_HTTP"; else echo "$B_HTTP"; fi; }
other() { if [ "$1" = A ]; then echo B; else echo A; fi; }

echo
echo "== 0. without a token, and the metadata"
call
echo "  POST /mcp without a token: $status ($replica) WWW-Authenticate: $challenge"
check "401 with a Bearer challenge naming the resource metadata" \
  test "$status" = 401 -a -n "$(grep -F "resource_metadata=\"http://127.0.0.1:$FRONT/.well-known/oauth-protected-resource/mcp\"" <<<"$challenge")"
prm=$(curl -s "http://127.0.0.1:$FRONT/.well-known/oauth-protected-resource/mcp")
check "Protected Resource Metadata through nginx names the resource and the AS" \
  grep -qF "\"authorization_servers\":[\"$ISSUER\"]" <<<"$prm"

TOKEN=$(curl -s -u demo-opaque:demo-secret -d grant_type=client_credentials -d scope=mcp:tools \
  --data-urlencode "resource=$RESOURCE" "$ISSUER/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
[ -n "$TOKEN" ] && [ "${#TOKEN}" -lt 200 ] || die "no opaque token from the AS"

echo
echo "== 1. first Check of an opaque token: one introspection, by the replica that got it"
call "$TOKEN"
first=$replica
echo "  POST /mcp: $status from replica $first: $body"
echo "  introspections: replica A $(introspections "$A_HTTP"), replica B $(introspections "$B_HTTP"), AS counted $(as_introspections)"
check "allowed, identity forwarded to the MCP server" test "$status" = 200 -a -n "$(grep -F 'subject=' <<<"$body")"
check "replica $first introspected once, the AS saw one introspection" \
  test "$(introspections "$(port_of "$first")")" = 1 -a "$(as_introspections)" = 1

echo
echo "== 2. the same token on the other replica: answered from Redis"
second=$first
for _ in 1 2 3 4; do # round robin sends the next request to the other replica
  call "$TOKEN"
  second=$replica
  [ "$second" != "$first" ] && break
done
echo "  POST /mcp: $status from replica $second: $body"
echo "  replica $second: Redis hits $(redis_hits "$(port_of "$second")"), introspections $(introspections "$(port_of "$second")"); AS counted $(as_introspections)"
check "allowed by the other replica ($second)" test "$status" = 200 -a "$second" = "$(other "$first")"
check "replica $second found the token in Redis and did not introspect; the AS still saw one" \
  test "$(redis_hits "$(port_of "$second")")" -ge 1 -a "$(introspections "$(port_of "$second")")" = 0 -a "$(as_introspections)" = 1
for _ in 1 2 3 4; do call "$TOKEN"; done
echo "  4 more requests: in-process (L1) hits: A $(l1_hits "$A_HTTP"), B $(l1_hits "$B_HTTP"); AS counted $(as_introspections)"
check "later requests on both replicas come from the cache" test "$(as_introspections)" = 1

echo
echo "== 3. revoked at the AS: still allowed from the cache until cache.max_ttl (5 m)"
curl -sf -u demo-opaque:demo-secret -d "token=$TOKEN" "$ISSUER/revoke" >/dev/null
call "$TOKEN"; s1=$status r1=$replica
call "$TOKEN"; s2=$status r2=$replica
echo "  POST /mcp: $s1 from $r1, $s2 from $r2"
check "both replicas still allow it (the cache does not ask the AS again)" test "$s1$s2" = 200200 -a "$r1" != "$r2"

echo
echo "== 4. POST /admin/revoke on replica A: gone from both replicas"
before=$(metric "$B_HTTP" mcp_authz_cache_revocations_received_total)
revoked=$(curl -s -w ' %{http_code}' -X POST -H "Authorization: Bearer $MCP_AUTHZ_ADMIN_TOKEN" \
  --data-urlencode "token=$TOKEN" "http://127.0.0.1:$A_HTTP/admin/revoke" | tr -d '\n')
echo "  replica A /admin/revoke: $revoked"
for _ in $(seq 50); do # pub/sub delivery to B is asynchronous
  [ "$(metric "$B_HTTP" mcp_authz_cache_revocations_received_total)" -gt "$before" ] && break
  sleep 0.1
done
echo "  replica B revocations received over Redis pub/sub: $(metric "$B_HTTP" mcp_authz_cache_revocations_received_total)"
check "replica A accepted the revocation" test "${revoked##* }" = 200
call "$TOKEN"; s1=$status r1=$replica c1=$challenge
call "$TOKEN"; s2=$status r2=$replica
echo "  POST /mcp: $s1 from $r1, $s2 from $r2 (WWW-Authenticate: $c1)"
check "both replicas deny it now: 401 invalid_token" \
  test "$s1$s2" = 401401 -a "$r1" != "$r2" -a -n "$(grep -F 'error="invalid_token"' <<<"$c1")"
check "they asked the AS again instead of trusting a cache" test "$(as_introspections)" -ge 2

echo
if [ "$failed" = 0 ]; then echo "PASS: two replicas share one Redis: verified once, answered by both, revoked on both"
else echo "FAIL: see above; logs in $work"; fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && result=0
exit "$result"
