#!/usr/bin/env bash
# mcp-authz in front of a real Ory Hydra v2.3.0, on loopback, for a person at a terminal:
# builds Hydra once (build.sh, into the tools cache) and mcp-authz, starts redis-server, Hydra
# (in memory) and `mcp-authz serve` on free ports, runs `mcp-authz doctor` on the generated
# configuration, then checks JWT and opaque tokens with `mcp-authz check` and times how long a
# revocation at Hydra takes to reach mcp-authz (revalidate_after, 2s here). Prints PASS or
# FAIL per check and stops everything it started on exit; exit status 0 only if all passed.
# Needs: go, curl, redis-server. KEEP=1 keeps the logs (they are always kept on failure).
# `go test ./deploy/hydra/` runs more scenarios (authorization_code, refresh token, step-up).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

die() { echo "run.sh: $*" >&2; exit 2; }
command -v go >/dev/null || die "go is missing"
command -v curl >/dev/null || die "curl is missing"
command -v redis-server >/dev/null || die "redis-server is missing: apt-get install -y redis-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/mcp-authz-hydra.XXXXXX")
. "$root/deploy/lib/proc.sh"
status=1
cleanup() {
  stop_started
  if [ "$status" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "logs and configuration: $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


echo "== building Ory Hydra (once, into the tools cache) and mcp-authz"
HYDRA=$("$here/build.sh")
(cd "$root" && go build -o "$work/mcp-authz" ./cmd/mcp-authz)

read -r PUB ADM REDIS GRPC HTTP < <(free_ports 5)
ISSUER="http://127.0.0.1:$PUB" ADMIN="http://127.0.0.1:$ADM"
echo "== starting redis-server :$REDIS, hydra :$PUB (admin :$ADM), mcp-authz :$GRPC"
start "$work/redis.log" redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no --dir "$work"
wait_port redis-server "$REDIS" "$last" "$work/redis.log" 30
start "$work/hydra.log" env DSN=memory SECRETS_SYSTEM="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" \
  URLS_SELF_ISSUER="$ISSUER" SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT="$PUB" \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT="$ADM" LOG_LEVEL=warn SQA_OPT_OUT=true "$HYDRA" serve all --dev
wait_port hydra "$ADM" "$last" "$work/hydra.log" 30
for _ in $(seq 100); do curl -fs "$ADMIN/health/ready" >/dev/null && break; sleep 0.1; done

register() { # ID STRATEGY
  curl -fs -X POST "$ADMIN/admin/clients" -H 'Content-Type: application/json' -d "{\"client_id\":\"$1\",
    \"client_secret\":\"$1-secret\",\"grant_types\":[\"client_credentials\"],\"scope\":\"mcp:tools mcp:read\",
    \"audience\":[\"http://mcp.test/mcp\"],\"access_token_strategy\":\"$2\"}" >/dev/null
}
token() { # ID SCOPE: an access token, with audience= (Hydra ignores resource=)
  curl -fs -u "$1:$1-secret" -d grant_type=client_credentials -d "scope=$2" -d audience=http://mcp.test/mcp \
    "$ISSUER/oauth2/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
register agent-jwt jwt
register agent-opaque opaque
token agent-jwt mcp:tools >/dev/null # a fresh Hydra creates its signing key on first use

sed -e "s|@GRPC@|127.0.0.1:$GRPC|" -e "s|@HTTP@|127.0.0.1:$HTTP|" -e "s|@REDIS@|127.0.0.1:$REDIS|" \
  -e "s|@ISSUER@|$ISSUER|" -e "s|@ADMIN@|$ADMIN|" -e "s|@VERIFY_JWT@|true|" -e "s|@REVALIDATE@|2s|" \
  mcp-authz.yaml.in >"$work/mcp-authz.yaml"
CACHE_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export CACHE_SECRET

pass=0 fail=0
result() { # RC TITLE
  if [ "$1" = 0 ]; then echo "PASS  $2"; pass=$((pass + 1)); else echo "FAIL  $2"; fail=$((fail + 1)); fi
}
echo "== mcp-authz doctor (the configuration against this Hydra)"
rc=0; "$work/mcp-authz" doctor "$work/mcp-authz.yaml" >"$work/doctor.out" 2>&1 || rc=$?
result "$rc" "doctor: the configuration fits Hydra"; grep -E '^(ok|FAIL|DOWN|note)' "$work/doctor.out" || true

start "$work/mcp-authz.log" "$work/mcp-authz" serve --config "$work/mcp-authz.yaml"
wait_port mcp-authz "$GRPC" "$last" "$work/mcp-authz.log" 30

allowed() { "$work/mcp-authz" check -addr "127.0.0.1:$GRPC" -host mcp.test -path /mcp -token "$1" 2>/dev/null | grep -q '"okResponse"'; }
JWT=$(token agent-jwt mcp:tools) OPAQUE=$(token agent-opaque mcp:tools) READER=$(token agent-jwt mcp:read)
expect() { # allow|deny TOKEN TITLE (set -e must not end the run on a failed check)
  local rc=0
  allowed "$2" || rc=$?
  if [ "$1" = deny ]; then rc=$((rc == 0)); fi
  result "$rc" "$3"
}
expect allow "$JWT" "a Hydra JWT (typ JWT, scp) is allowed"
expect allow "$OPAQUE" "a Hydra opaque token (admin introspection) is allowed"
expect deny "$READER" "a token with only mcp:read is refused (403 insufficient_scope)"

curl -fs -u agent-opaque:agent-opaque-secret -d "token=$OPAQUE" "$ISSUER/oauth2/revoke"
t0=$(date +%s%N)
for _ in $(seq 300); do allowed "$OPAQUE" || break; sleep 0.05; done
ms=$((($(date +%s%N) - t0) / 1000000))
expect deny "$OPAQUE" "the revoked opaque token is refused ${ms} ms after /oauth2/revoke (revalidate_after 2s)"

echo "== $pass passed, $fail failed"
[ "$fail" = 0 ] && status=0
exit "$status"
