#!/usr/bin/env bash
# The interop run, end to end on loopback, for a person at a terminal:
#   MCP client (SDK) ──▶ nginx (deploy/nginx/mcp-authz.conf) ──auth_request──▶ mcp-authz ──▶ Redis
#                          └──▶ MCP server (SDK)                 JWKS, introspection ──▶ oidc-provider
# It installs the pinned npm packages on first use, builds mcp-authz, starts every process on
# free loopback ports, runs the client scenarios (three with SDK 1.x on /mcp, three with SDK
# 2.x on /mcp/payments, whose refund tool is for the finance group), prints PASS or FAIL for
# each, and stops everything it started on exit. Exit status 0 only when every check passed.
# The ext_authz gRPC half of the header/body mismatch, and of the DPoP and certificate-bound
# scenarios, is in the Go test only.
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

if [ ! -d node_modules/oidc-provider ] || [ ! -d node_modules/@modelcontextprotocol/sdk ] || [ ! -d node_modules/zod ] ||
  [ ! -d node_modules/@modelcontextprotocol/client ] || [ ! -d node_modules/@modelcontextprotocol/server ] ||
  [ ! -d node_modules/oauth4webapi ]; then
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
PAYMENTS="$RESOURCE/payments"          # the SDK 2.x server, with the refund rule
ISSUER="http://127.0.0.1:$AS"

echo "== building mcp-authz"
(cd "$root" && go build -o "$work/mcp-authz" ./cmd/mcp-authz)

echo "== starting redis-server :$REDIS, oidc-provider :$AS, MCP server :$UP, mcp-authz :$AUTHZ, nginx :$FRONT"
start redis "$work/redis.out" redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log"
wait_port redis-server "$REDIS" "$last" "$work/redis.log"

start oidc-provider "$work/as.log" node as.mjs "$AS" "$RESOURCE" "$PAYMENTS"
wait_port oidc-provider "$AS" "$last" "$work/as.log"

start mcp-server "$work/server.log" node server.mjs "$UP"
wait_port "MCP server" "$UP" "$last" "$work/server.log"

sed -e "s|@AUTHZ_HTTP@|127.0.0.1:$AUTHZ|" -e "s|@REDIS@|127.0.0.1:$REDIS|" \
  -e "s|@ISSUER@|$ISSUER|" -e "s|@RESOURCE@|$RESOURCE|" -e "s|@RESOURCE_PAYMENTS@|$PAYMENTS|" \
  mcp-authz.yaml.in >"$work/mcp-authz.yaml"
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
# scenario TITLE EXPECT CLIENT_ID SECRET SCOPE [PROGRAM URL]
scenario() {
  local title=$1 expect=$2 id=$3 prog=${6:-client.mjs} url=${7:-$RESOURCE} rc=0
  echo "== $title"
  timeout 30 node "$prog" --expect="$expect" "$url" "$id" "$4" "$ISSUER" "$5" \
    >"$work/$prog-$expect-$id.json" 2>"$work/$prog-$expect-$id.err" || rc=$?
  result "$rc" "$title"
  cat "$work/$prog-$expect-$id.err"
}
scenario "(a) JWT access token (RFC 9068), scope mcp:tools: initialize + tools/call succeed" ok-jwt agent agent-secret mcp:tools
scenario "(b) opaque access token via introspection (RFC 7662), scope mcp:tools: initialize + tools/call succeed" ok-opaque agent-opaque agent-opaque-secret mcp:tools
scenario "(c) client limited to mcp:read: 403 insufficient_scope with scope=\"mcp:tools\", the call fails" insufficient_scope reader reader-secret mcp:read

scenario "(d) SDK 2.x, client finance (groups [finance]): echo and refund succeed" allowed finance finance-secret mcp:tools client2.mjs "$PAYMENTS"
scenario "(e) SDK 2.x, client agent (groups [support]): echo succeeds, refund gets 403 without a challenge" denied agent agent-secret mcp:tools client2.mjs "$PAYMENTS"
scenario "(f) SDK 2.x, Mcp-Name echo with a body calling refund: mcp-authz (headers only) lets it through, the 2.x server answers 400 -32020" mismatch agent agent-secret mcp:tools client2.mjs "$PAYMENTS"

calls=$(grep -c '"tool_call"' "$work/server.log" || true)
echo "== the MCP server's own log"
result "$([ "$calls" = 2 ] && echo 0 || echo 1)" "exactly the 2 allowed SDK 1.x tool calls reached the MCP server (saw $calls)"
pay=$(node -e 'console.log(require("fs").readFileSync(process.argv[1], "utf8").split("\n")
  .filter((l) => l.includes("\"payments_call\"")).map((l) => { const j = JSON.parse(l); return `${j.payments_call} by ${j.client_id}`; }).join(","))' "$work/server.log")
want="echo by finance,refund by finance,echo by agent,echo by agent"
result "$([ "$pay" = "$want" ] && echo 0 || echo 1)" "the payments server ran only the allowed tools: $want (saw $pay)"

# Sender-constrained tokens, after the counts above (their tool calls are not among them).
scenario "(g) DPoP (oauth4webapi), JWT: tools/call with proofs; as Bearer, replayed, for another URL or method, without a proof: 401" dpop agent-dpop agent-dpop-secret mcp:tools client-dpop.mjs
scenario "(g) DPoP (oauth4webapi), opaque token via introspection: the same" dpop agent-dpop-opaque agent-dpop-opaque-secret mcp:tools client-dpop.mjs

echo "== $pass passed, $fail failed"
[ "$fail" = 0 ] && status=0
exit "$status"
