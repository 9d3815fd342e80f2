#!/usr/bin/env bash
# Reproducible ext_authz benchmark: a no-op baseline and mcp-authz scenarios, measured by the
# same ghz parameters in the same run, interleaved, with ratios to the baseline.
#
#   bench/run.sh [-d 10s] [-c 50] [-r 3] [-p pinned|unpinned]
#
# Server pinned to CPU 0 and ghz to CPU 1 by default (taskset). Reports RPS, p50, p99 (medians
# over rounds), ratio to the no-op RPS of the same round, and server CPU µs per Check from the
# server's /proc/PID/stat, which does not depend on how busy the load generator is.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=10s; CONC=50; ROUNDS=3; MODE=pinned
while getopts d:c:r:p: o; do case $o in d) DUR=$OPTARG;; c) CONC=$OPTARG;; r) ROUNDS=$OPTARG;; p) MODE=$OPTARG;; *) exit 2;; esac; done

TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
mkdir -p "$TOOLS"
GHZ=$TOOLS/ghz
[ -x "$GHZ" ] || GOBIN=$TOOLS go install github.com/bojand/ghz/cmd/ghz@v0.120.0
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

go build -o "$WORK/mcp-authz" ./cmd/mcp-authz
go build -o "$WORK/noop" ./bench/noop
SRV=(); GEN=()
if [ "$MODE" = pinned ]; then SRV=(taskset -c 0); GEN=(taskset -c 1); fi

"${SRV[@]}" "$WORK/noop" -addr 127.0.0.1:9291 >/dev/null & pids+=($!); NOOP_PID=$!
"${SRV[@]}" "$WORK/mcp-authz" demo -grpc 127.0.0.1:9191 -http 127.0.0.1:9192 -as 127.0.0.1:9193 >"$WORK/demo.log" 2>&1 & pids+=($!); DEMO_PID=$!
for i in $(seq 50); do curl -sf 127.0.0.1:9192/healthz >/dev/null && curl -sf 127.0.0.1:9193/jwks >/dev/null && break; sleep 0.1; done
# A second instance with the cache off: every JWT is signature-verified (the crypto bound).
cat >"$WORK/nocache.yaml" <<Y
listen: { grpc: 127.0.0.1:9194, http: "" }
log: { level: error }
dev: { allow_http: true }
cache: { l1_size: -1 }
issuers: [ { issuer: "http://127.0.0.1:9193" } ]
resources:
  - resource: http://localhost:8080/mcp
    scopes: { required: [mcp:tools] }
Y
"${SRV[@]}" "$WORK/mcp-authz" serve --config "$WORK/nocache.yaml" 2>"$WORK/nocache.log" & pids+=($!); NOCACHE_PID=$!
sleep 0.5

tok() { curl -s -u "$1:demo-secret" -d grant_type=client_credentials -d scope=mcp:tools \
  --data-urlencode resource=http://localhost:8080/mcp http://127.0.0.1:9193/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/'; }
JWT=$(tok demo); OPAQUE=$(tok demo-opaque)
req() { printf '{"attributes":{"request":{"http":{"method":"POST","host":"localhost:8080","path":"/mcp","headers":{%s}}}}}' "$1"; }
D_NONE=$(req ''); D_JWT=$(req "\"authorization\":\"Bearer $JWT\""); D_OPAQUE=$(req "\"authorization\":\"Bearer $OPAQUE\"")
D_BAD=$(req '"authorization":"Bearer not.a.jwt"')

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() { # name addr pid data
  local t0 t1
  [ -n "$1" ] || return 0
  t0=$(cpu_ticks "$3")
  "${GEN[@]}" "$GHZ" --insecure --protoset proto/authz.protoset --call envoy.service.auth.v3.Authorization.Check \
    -d "$4" -c "$CONC" -z "$DUR" -O json "$2" >"$WORK/$1.json" 2>/dev/null
  t1=$(cpu_ticks "$3")
  python3 - "$WORK/$1.json" "$((t1-t0))" "$(getconf CLK_TCK)" <<'PY' >>"$WORK/$1.rows"
import json,sys
r=json.load(open(sys.argv[1])); ticks=int(sys.argv[2]); hz=int(sys.argv[3])
lat={d["percentage"]:d["latency"] for d in r.get("latencyDistribution") or []}
ok=r["statusCodeDistribution"].get("OK",0); n=r["count"]
print(f'{r["rps"]:.0f} {lat.get(50,0)/1e6:.2f} {lat.get(99,0)/1e6:.2f} {ticks/hz*1e6/max(n,1):.1f} {ok}/{n}')
PY
}
# The baseline receives the same request bytes as the JWT scenarios (a 700-byte token).
SCEN=("noop 127.0.0.1:9291 $NOOP_PID D_JWT" "no-token-401 127.0.0.1:9191 $DEMO_PID D_NONE"
      "jwt-cached 127.0.0.1:9191 $DEMO_PID D_JWT" "opaque-L1 127.0.0.1:9191 $DEMO_PID D_OPAQUE"
      "invalid-token 127.0.0.1:9191 $DEMO_PID D_BAD" "jwt-uncached 127.0.0.1:9194 $NOCACHE_PID D_JWT")
# Keep only scenarios whose token could be had (e.g. an older demo without the opaque client).
case "$OPAQUE" in *'{'*|"") SCEN=("${SCEN[@]/opaque-L1*/}"); echo "no opaque token from the demo AS: skipping opaque-L1" >&2;; esac
SCEN=($(printf '%s\n' "${SCEN[@]}" | grep . | tr ' ' '|')); SCEN=("${SCEN[@]//|/ }")
# Warm up every target once.
for s in "${SCEN[@]}"; do set -- $s; "${GEN[@]}" "$GHZ" --insecure --protoset proto/authz.protoset --call envoy.service.auth.v3.Authorization.Check -d "${!4}" -c "$CONC" -n 2000 "$2" >/dev/null 2>&1; done
for r in $(seq "$ROUNDS"); do for s in "${SCEN[@]}"; do set -- $s; run "$1" "$2" "$3" "${!4}"; done; done

echo "# $(date -u +%FT%TZ) $(nproc) CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); ghz v0.120.0 -c $CONC -z $DUR, $ROUNDS rounds, $MODE; medians"
printf '%-14s %9s %8s %8s %10s %12s %12s\n' scenario RPS p50_ms p99_ms vs_noop cpu_us/chk cpu_vs_noop
python3 - "$WORK" "${SCEN[@]}" <<'PY'
import sys,statistics as st
w=sys.argv[1]; names=[s.split()[0] for s in sys.argv[2:]]
rows={n:[list(map(float,l.split()[:4])) for l in open(f"{w}/{n}.rows")] for n in names}
med=lambda n,i: st.median(r[i] for r in rows[n])
# ratio per round, then median
for n in names:
    ratio=st.median(a[0]/b[0] for a,b in zip(rows[n],rows["noop"]))
    cpu=st.median(a[3]/b[3] for a,b in zip(rows[n],rows["noop"]))
    print(f"{n:<14} {med(n,0):9.0f} {med(n,1):8.2f} {med(n,2):8.2f} {ratio:9.2f}x {med(n,3):12.1f} {cpu:11.2f}x")
PY
# Calls still in flight when a -z run ends are cut off by ghz; more than 1% non-OK is a problem.
for s in "${SCEN[@]}"; do set -- $s
  awk -v n="$1" '{split($5,a,"/"); if (n !~ /401|invalid/ && a[2]-a[1] > a[2]/100) print "WARN " n ": " a[2]-a[1] " of " a[2] " calls not OK"}' "$WORK/$1.rows"
done
