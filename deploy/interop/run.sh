#!/usr/bin/env bash
# The interop run, end to end on loopback, for a person at a terminal:
#   MCP client (SDK) ──▶ nginx (deploy/nginx/mcp-authz.conf) ──auth_request──▶ mcp-authz ──▶ Redis
#                          └──▶ MCP server (SDK)                 JWKS, introspection ──▶ oidc-provider
# It installs the pinned npm packages on first use, builds mcp-authz, starts every process on
# free loopback ports, runs the three client scenarios, prints PASS or FAIL for each, and stops
# everything it started on exit. Exit status 0 only when every check passed.
# Needs: node >= 20, npm, go, nginx (with auth_request), redis-server.
# KEEP=1 keeps the logs and generated configurations (they are always kept on failure).
# `go test ./deploy/interop/` runs the same scenarios (with mcp-authz in-process).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

die() { echo "run.sh: $*" >&2; exit 2; }
command -v node >/dev/null || die "node is missing: install Node.js >= 20"
command -v go >/dev/null || die "go is missing"
command -v redis-server >/dev/null || die "redis-server is missing: apt-get install -y redis-server"
NGINX=$(command -v nginx || true)
if [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ]; then NGINX=/usr/sbin/nginx; fi
[ -n "$NGINX" ] || die "nginx is missing: apt-get install -y nginx"

if [ ! -d node_modules/oidc-provider ] || [ ! -d node_modules/@modelcontextprotocol/sdk ] || [ ! -d node_modules/zod ]; then
  echo "== npm ci (versions pinned by package-lock.json)"
  npm ci --no-audit --no-fund
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mcp-authz-interop.XXXXXX")
pids=()
status=1
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$status" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "logs and configurations: $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOG COMMAND...: runs COMMAND in the background; its pid is in $last.
start() {
  local log=$2; shift 2
  "$@" >"$log" 2>&1 &
  last=$!
  pids+=("$last")
}
# wait_port NAME PORT PID LOG: until 127.0.0.1:PORT accepts connections (20 s at most).
wait_port() {
  local name=$1 port=$2 pid=$3 log=$4
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "$name exited at start:"; tail -n 30 "$log"; exit 1; fi
    sleep 0.1
  done
  echo "$name did not listen on 127.0.0.1:$port within 20 s:"; tail -n 30 "$log"; exit 1
}

# Five free loopback ports, held together while chosen so they differ.
read -r FRONT AS UP AUTHZ REDIS < <(node -e '
const net = require("net"); const all = [];
for (let i = 0; i < 5; i++) all.push(new Promise((ok) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => ok(s)); }));
Promise.all(all).then((ss) => { console.log(ss.map((s) => s.address().port).join(" ")); ss.forEach((s) => s.close()); });')
RESOURCE="http://127.0.0.1:$FRONT/mcp" # the SDK requires the PRM resource to be the URL it calls
ISSUER="http://127.0.0.1:$AS"

echo "== building mcp-authz"
(cd "$root" && go build -o "$work/mcp-authz" ./cmd/mcp-authz)

echo "== starting redis-server :$REDIS, oidc-provider :$AS, MCP server :$UP, mcp-authz :$AUTHZ, nginx :$FRONT"
start redis "$work/redis.out" redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log"
wait_port redis-server "$REDIS" "$last" "$work/redis.log"

start oidc-provider "$work/as.log" node as.mjs "$AS" "$RESOURCE"
wait_port oidc-provider "$AS" "$last" "$work/as.log"

start mcp-server "$work/server.log" node server.mjs "$UP"
wait_port "MCP server" "$UP" "$last" "$work/server.log"

sed -e "s|@AUTHZ_HTTP@|127.0.0.1:$AUTHZ|" -e "s|@REDIS@|127.0.0.1:$REDIS|" \
  -e "s|@ISSUER@|$ISSUER|" -e "s|@RESOURCE@|$RESOURCE|" mcp-authz.yaml.in >"$work/mcp-authz.yaml"
CACHE_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
RS_SECRET=rs-secret # oidc-provider's client "rs" (as.mjs), which mcp-authz introspects as
export CACHE_SECRET RS_SECRET
"$work/mcp-authz" check-config "$work/mcp-authz.yaml" >"$work/check-config.out" 2>&1 ||
  { cat "$work/check-config.out"; exit 1; }
start mcp-authz "$work/mcp-authz.log" "$work/mcp-authz" serve --config "$work/mcp-authz.yaml"
wait_port mcp-authz "$AUTHZ" "$last" "$work/mcp-authz.log"

mkdir -p "$work/nginx"
sed -e "s/127\.0\.0\.1:8080\b/127.0.0.1:$FRONT/g" -e "s/127\.0\.0\.1:9192\b/127.0.0.1:$AUTHZ/g" \
  -e "s/127\.0\.0\.1:3000\b/127.0.0.1:$UP/g" ../nginx/mcp-authz.conf >"$work/nginx/mcp-authz.conf"
sed -e "s|@DIR@|$work/nginx|g" nginx.conf.in >"$work/nginx/nginx.conf"
start nginx "$work/nginx/nginx.out" "$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx"
wait_port nginx "$FRONT" "$last" "$work/nginx/error.log"

pass=0 fail=0
result() { # OK TITLE
  if [ "$1" = 0 ]; then echo "PASS  $2"; pass=$((pass + 1)); else echo "FAIL  $2"; fail=$((fail + 1)); fi
}
# scenario TITLE EXPECT CLIENT_ID SECRET SCOPE
scenario() {
  local title=$1 expect=$2 id=$3 rc=0
  echo "== $title"
  timeout 30 node client.mjs --expect="$expect" "$RESOURCE" "$id" "$4" "$ISSUER" "$5" \
    >"$work/client-$id.json" 2>"$work/client-$id.err" || rc=$?
  result "$rc" "$title"
  cat "$work/client-$id.err"
}
scenario "(a) JWT access token (RFC 9068), scope mcp:tools: initialize + tools/call succeed" ok-jwt agent agent-secret mcp:tools
scenario "(b) opaque access token via introspection (RFC 7662), scope mcp:tools: initialize + tools/call succeed" ok-opaque agent-opaque agent-opaque-secret mcp:tools
scenario "(c) client limited to mcp:read: 403 insufficient_scope with scope=\"mcp:tools\", the call fails" insufficient_scope reader reader-secret mcp:read

calls=$(grep -c '"tool_call"' "$work/server.log" || true)
echo "== the MCP server's own log"
result "$([ "$calls" = 2 ] && echo 0 || echo 1)" "exactly the 2 allowed tool calls reached the MCP server (saw $calls)"

echo "== $pass passed, $fail failed"
[ "$fail" = 0 ] && status=0
exit "$status"
