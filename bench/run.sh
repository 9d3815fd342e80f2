#!/usr/bin/env bash
# Reproducible ext_authz benchmark: a no-op baseline, mcp-authz scenarios and OPA-Envoy, measured
# by the same ghz parameters in the same run, interleaved, with ratios to the baseline; then
# memory, multi-replica and core-scaling measurements. Results and how to read them:
# bench/README.md.
#
#   bench/run.sh [-d 10s] [-c 50] [-r 3] [-p pinned|unpinned] [-l 20ms] [-n 100000] [-q 6000]
#                [-s main,rate,memory,scale,cores,routes] [-o noop,jwt-cached,...] [-P 9191]
#
#   -d  duration of each measured ghz run        -c  ghz concurrency (one HTTP/2 connection)
#   -r  interleaved rounds (medians are shown)   -p  pinned: servers on CPU 0, ghz on CPU 1
#   -l  the slow authorization server's latency  -n  distinct tokens for the real-server fill
#   -s  sections to run (default all)           -o  only these main scenarios (baselines always run)
#   -q  the fixed request rate of the rate section (equal load for every server)
#   -P  the port base (default $BENCH_PORT_BASE, else 9191): every listener is on 127.0.0.1
#       at base-910 … base+188; e.g. -P 19191 beside a running `mcp-authz demo` (9191–9193)
#
# Server CPU µs per Check comes from the server's /proc/PID/stat, which does not depend on how
# busy the load generator is. Needs: go, curl, python3, taskset, redis-server, redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=10s; CONC=50; ROUNDS=3; MODE=pinned; LAT=20ms; FILL=100000; SECTIONS=main,rate,memory,scale,cores,routes; ONLY=; RATE=6000
PB=${BENCH_PORT_BASE:-9191}
while getopts d:c:r:p:l:n:s:o:q:P: o; do case $o in
  d) DUR=$OPTARG;; c) CONC=$OPTARG;; r) ROUNDS=$OPTARG;; p) MODE=$OPTARG;; l) LAT=$OPTARG;;
  n) FILL=$OPTARG;; s) SECTIONS=$OPTARG;; o) ONLY=$OPTARG;; q) RATE=$OPTARG;; P) PB=$OPTARG;; *) exit 2;; esac; done
[[ "$PB" =~ ^[0-9]+$ ]] && [ "$PB" -ge 1934 ] && [ "$PB" -le 65347 ] || { echo "-P $PB: a port base from 1934 to 65347 (listeners use base-910 … base+188)" >&2; exit 2; }
case $MODE in pinned|unpinned) ;; *) echo "-p pinned or -p unpinned" >&2; exit 2;; esac
want() { [[ ",$SECTIONS," == *",$1,"* ]]; }
for b in redis-server redis-cli curl python3 taskset; do
  command -v $b >/dev/null || { echo "$b not installed (apt-get install -y redis-server curl python3 util-linux)" >&2; exit 1; }
done

TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
mkdir -p "$TOOLS"
GHZ=$TOOLS/ghz
[ -x "$GHZ" ] || GOBIN=$TOOLS go install github.com/bojand/ghz/cmd/ghz@v0.120.0
OPA=$(bench/opa/build.sh)
WORK=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${BENCH_KEEP:-}" ]; then echo "raw results kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$WORK/mcp-authz" ./cmd/mcp-authz
go build -o "$WORK/noop" ./bench/noop
go build -o "$WORK/slowas" ./bench/slowas
go build -o "$WORK/memory" ./bench/memory
go build -o "$WORK/cpuscale" ./bench/cpuscale
SRV=(); GEN=()
if [ "$MODE" = pinned ]; then SRV=(taskset -c 0); GEN=(taskset -c 1); fi
export BENCH_CACHE_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_INTROSPECTION_SECRET=bench-secret
RUNID=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
RES=http://localhost:8080/mcp
REDIS=127.0.0.1:$((PB+188)); FAST=127.0.0.1:$((PB+89)); SLOW=127.0.0.1:$((PB+90))

waitport() { for _ in $(seq 1000); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.01; done
  echo "nothing listens on $1; logs in $WORK" >&2; tail -n 5 "$WORK"/*.log >&2; exit 1; }
rcli() { redis-cli -h 127.0.0.1 -p "${REDIS#*:}" "$@"; }
# serve NAME GRPC HTTP [taskset CPUs]: run mcp-authz serve on $WORK/NAME.yaml; sets SPID.
serve() {
  local pre=("${SRV[@]}"); [ -n "${4:-}" ] && pre=(taskset -c "$4")
  "${pre[@]}" "$WORK/mcp-authz" serve --config "$WORK/$1.yaml" 2>"$WORK/$1.log" & SPID=$!; pids+=($SPID)
  waitport "$2"; [ -z "$3" ] || waitport "$3"
}
# cfg NAME GRPC HTTP ISSUER CACHE-YAML [introspection]: an mcp-authz configuration file.
cfg() {
  { echo "listen: { grpc: $2, http: \"$3\" }"
    echo "log: { level: error }"
    echo "dev: { allow_http: true }"
    echo "cache: $5"
    echo "issuers:"
    echo "  - issuer: \"$4\""
    if [ "${6:-}" = introspection ]; then
      echo "    verify_jwt: false"
      echo "    introspection: { client_id: bench, client_secret: { env: BENCH_INTROSPECTION_SECRET }, max_concurrent: $(( CONC > 64 ? CONC : 64 )), timeout: 2s }"
    fi
    echo "resources:"
    echo "  - resource: $RES"
    echo "    scopes: { required: [mcp:tools] }"; } >"$WORK/$1.yaml"
}
rss() { awk -v k="${2:-VmRSS}:" '$1==k {printf "%.1f", $2/1024}' "/proc/$1/status"; }
counts() { curl -sf "http://$1/count" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["introspect"], d["conns"])'; }

# --- Servers ------------------------------------------------------------------------------------
mkdir -p "$WORK/redis"
"${SRV[@]}" redis-server --port "${REDIS#*:}" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
  >"$WORK/redis.log" 2>&1 & REDIS_PID=$!; pids+=($REDIS_PID)
# The stand-in authorization servers are the outside world: they run beside ghz.
"${GEN[@]}" "$WORK/slowas" -addr $FAST -latency 0 >"$WORK/slowas-fast.log" 2>&1 & pids+=($!)
"${GEN[@]}" "$WORK/slowas" -addr $SLOW -latency "$LAT" >"$WORK/slowas-slow.log" 2>&1 & SLOWAS_PID=$!; pids+=($!)
"${SRV[@]}" "$WORK/noop" -addr 127.0.0.1:$((PB+100)) >/dev/null & pids+=($!); NOOP_PID=$!
"${SRV[@]}" "$WORK/mcp-authz" demo -grpc 127.0.0.1:$((PB+0)) -http 127.0.0.1:$((PB+1)) -as 127.0.0.1:$((PB+2)) >"$WORK/demo.log" 2>&1 & pids+=($!); DEMO_PID=$!
waitport $REDIS; waitport $FAST; waitport $SLOW; waitport 127.0.0.1:$((PB+100)); waitport 127.0.0.1:$((PB+1)); waitport 127.0.0.1:$((PB+2))
for _ in $(seq 50); do curl -sf 127.0.0.1:$((PB+2))/jwks >/dev/null && break; sleep 0.1; done
# The cache off: every JWT is signature-verified (the crypto bound).
cfg nocache 127.0.0.1:$((PB+3)) 127.0.0.1:$((PB+103)) http://127.0.0.1:$((PB+2)) '{ l1_size: -1 }'
serve nocache 127.0.0.1:$((PB+3)) 127.0.0.1:$((PB+103)); NOCACHE_PID=$SPID
# Per-tool scopes: every Check reads the JSON-RPC body with the strict reader (L1 on).
cfg tools 127.0.0.1:$((PB+6)) 127.0.0.1:$((PB+106)) http://127.0.0.1:$((PB+2)) '{ l1_size: 100000 }'
echo '    mcp: { tools: { delete_file: [files:write], "*": [mcp:tools] } }' >>"$WORK/tools.yaml"
serve tools 127.0.0.1:$((PB+6)) 127.0.0.1:$((PB+106)); TOOLS_PID=$SPID
# The same tool call on a resource with ten rules (issue 17): nine name other tools, one
# matches and evaluates a CEL condition over a claim and a tool argument.
cfg rules 127.0.0.1:$((PB+8)) 127.0.0.1:$((PB+108)) http://127.0.0.1:$((PB+2)) '{ l1_size: 100000 }'
{ echo '    mcp: { tools: { delete_file: [files:write], "*": [mcp:tools] } }'
  echo '    rules:'
  for i in 0 1 2 3 4 5 6 7 8; do echo "      - { name: other-$i, match: { tools: [\"admin_${i}_*\"] }, when: 'claims.role == \"admin\"' }"; done
  echo "      - { name: search, match: { tools: [\"search_*\"] }, when: '\"staff\" in claims.groups && mcp.arguments.limit <= 50' }"
} >>"$WORK/rules.yaml"
serve rules 127.0.0.1:$((PB+8)) 127.0.0.1:$((PB+108)); RULES_PID=$SPID
# Opaque tokens answered from Redis: L1 off, Redis on (one GET per Check: the value carries its own deadline).
cfg redis 127.0.0.1:$((PB+4)) 127.0.0.1:$((PB+104)) "http://$FAST" "{ l1_size: -1, secret: { env: BENCH_CACHE_SECRET }, redis: { addrs: [\"$REDIS\"] } }" introspection
serve redis 127.0.0.1:$((PB+4)) 127.0.0.1:$((PB+104)); REDISSRV_PID=$SPID
# No cache at all: every Check introspects at the slow authorization server.
cfg slow 127.0.0.1:$((PB+5)) 127.0.0.1:$((PB+105)) "http://$SLOW" '{ l1_size: -1 }' introspection
serve slow 127.0.0.1:$((PB+5)) 127.0.0.1:$((PB+105)); SLOWSRV_PID=$SPID
# OPA-Envoy with the demo authorization server's JWKS as data.
python3 - "$(curl -sf 127.0.0.1:$((PB+2))/jwks)" "$RES" "http://127.0.0.1:$((PB+2))" >"$WORK/opa-data.json" <<'PY'
import json,sys
jwks,res,iss=sys.argv[1:4]
print(json.dumps({"bench":{"jwks":jwks,"issuer":iss,"resource":res,"scope":"mcp:tools",
  "host":"localhost:8080","path":"/mcp","metadata":"http://localhost:8080/.well-known/oauth-protected-resource/mcp"}}))
PY
sed "s/127.0.0.1:9198/127.0.0.1:$((PB+7))/" bench/opa/config.yaml >"$WORK/opa-config.yaml"
"${SRV[@]}" "$OPA" run --server --addr 127.0.0.1:$((PB-910)) --skip-version-check --log-level error \
  --config-file "$WORK/opa-config.yaml" bench/opa/policy.rego "$WORK/opa-data.json" >"$WORK/opa.log" 2>&1 & OPA_PID=$!; pids+=($OPA_PID)
waitport 127.0.0.1:$((PB+7))
sleep 1
declare -A IDLE
for n in noop:$NOOP_PID demo:$DEMO_PID nocache:$NOCACHE_PID redis:$REDISSRV_PID slow:$SLOWSRV_PID opa:$OPA_PID; do
  IDLE[${n%%:*}]=$(rss "${n#*:}"); done

tok() { curl -s -u "$1:demo-secret" -d grant_type=client_credentials -d scope=mcp:tools \
  --data-urlencode resource=$RES http://127.0.0.1:$((PB+2))/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/'; }
JWT=$(tok demo); OPAQUE=$(tok demo-opaque)
case "$OPAQUE" in *'{'*|"") echo "no opaque token from the demo AS" >&2; exit 1;; esac
# Replay baselines: the no-op server answering with mcp-authz's own allow (identity headers,
# authorization removed) and its own no-token 401, captured from the demo, without deciding
# anything. Against them, what remains is the cost of the decision; between them and the
# empty no-op, the cost of the response's bytes (mostly in the load generator, see README).
"$WORK/mcp-authz" check -addr 127.0.0.1:$((PB+0)) -token "$JWT" >"$WORK/allow-response.json"
"$WORK/mcp-authz" check -addr 127.0.0.1:$((PB+0)) >"$WORK/401-response.json" || [ $? = 2 ]  # check exits 2 on a 401
grep -q okResponse "$WORK/allow-response.json" && grep -q Unauthorized "$WORK/401-response.json" ||
  { echo "could not capture the demo's allow and 401 responses" >&2; exit 1; }
"${SRV[@]}" "$WORK/noop" -addr 127.0.0.1:$((PB+101)) -response "$WORK/allow-response.json" >/dev/null & pids+=($!); NOOPA_PID=$!
"${SRV[@]}" "$WORK/noop" -addr 127.0.0.1:$((PB+102)) -response "$WORK/401-response.json" >/dev/null & pids+=($!); NOOPD_PID=$!
waitport 127.0.0.1:$((PB+101)); waitport 127.0.0.1:$((PB+102))
# Request payloads, one file per scenario (ghz -D). The mix is a JSON array, which ghz v0.120.0
# sends round-robin by request number for unary calls: 16 JWT (80%), 2 opaque (10%), 1 without
# a token (5%), 1 invalid (5%) in every 20 requests. The slow-AS payload is a ghz template: every
# request carries a different token, so every Check misses.
python3 - "$WORK" "$JWT" "$OPAQUE" "$RUNID" <<'PY'
import json,sys
w,jwt,opaque,run=sys.argv[1:5]
def req(tok=None):
    h={} if tok is None else {"authorization":"Bearer "+tok}
    return {"attributes":{"request":{"http":{"method":"POST","host":"localhost:8080","path":"/mcp","headers":h}}}}
J,O,N,B=req(jwt),req(opaque),req(),req("not.a.jwt")
import base64
T=req(jwt); T["attributes"]["request"]["http"]["headers"]["content-type"]="application/json"
T["attributes"]["request"]["http"]["raw_body"]=base64.b64encode(b'{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_documents","arguments":{"query":"quarterly revenue by region","limit":20,"filters":{"year":2026,"tags":["finance","report"]}},"_meta":{"progressToken":"p-42"}}}').decode()
files={"none":N,"jwt":J,"opaque":O,"bad":B,"toolcall":T,"redis":req("bench-redis-"+run),
       "mix":[J,J,J,J,O,J,J,J,J,N,J,J,J,J,O,J,J,J,J,B],
       "unique":req("bench-slow-"+run+"-{{.RequestNumber}}")}
for k,v in files.items(): open(f"{w}/{k}.data","w").write(json.dumps(v))
PY
# --duration-stop=wait: calls in flight when -z ends finish and count (the default, close,
# cancels them, and the server then answers those with an error nobody receives).
ghzc() { "${GEN[@]}" "$GHZ" --insecure --protoset proto/authz.protoset --call envoy.service.auth.v3.Authorization.Check \
  --duration-stop=wait "$@"; }
redis_calls() { rcli info commandstats | awk -F'[:=,]' '/^cmdstat_/ && $1 !~ /cmdstat_(info|ping|config|dbsize|memory)$/ {s+=$3} END{print s+0}'; }
decisions() { # HTTP-ADDR → "allow total"
  [ "$1" = - ] && { echo "0 0"; return; }
  curl -sf "http://$1/metrics" | awk '/^mcp_authz_decisions_total/ {t+=$NF; if ($0 ~ /decision="allow"/) a+=$NF} END {print a+0, t+0}'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# run NAME GRPC PID HTTP DATA: one measured ghz run, appended to $WORK/NAME.rows.
run() {
  local t0 t1 r0 r1 c0 c1 s0 s1 d0 d1
  t0=$(cpu_ticks "$3"); r0=$(cpu_ticks $REDIS_PID); c0=$(redis_calls); s0=$(counts $FAST; counts $SLOW); d0=$(decisions "$4")
  # The load generator's own CPU time (user and sys of the subshell's children: ghz alone).
  g=$( { ghzc -D "$WORK/$5.data" -c "$CONC" -z "$DUR" ${RATEARGS:-} -O json "$2" >"$WORK/$1.json" 2>/dev/null; times; } | tail -1)
  t1=$(cpu_ticks "$3"); r1=$(cpu_ticks $REDIS_PID); c1=$(redis_calls); s1=$(counts $FAST; counts $SLOW); d1=$(decisions "$4")
  python3 - "$WORK/$1.json" "$((t1-t0))" "$(getconf CLK_TCK)" "$((r1-r0))" "$((c1-c0))" "$s0" "$s1" "$d0" "$d1" "$g" <<'PY' >>"$WORK/$1.rows"
import json,sys
r=json.load(open(sys.argv[1])); ticks=int(sys.argv[2]); hz=int(sys.argv[3]); rt=int(sys.argv[4]); rc=int(sys.argv[5])
s0=list(map(int,sys.argv[6].split())); s1=list(map(int,sys.argv[7].split()))
d0=list(map(int,sys.argv[8].split())); d1=list(map(int,sys.argv[9].split()))
lat={d["percentage"]:d["latency"] for d in r.get("latencyDistribution") or []}
ok=r["statusCodeDistribution"].get("OK",0); n=max(r["count"],1)
# (each /count query is itself a new connection to each AS, counted in its own answer)
idp=(s1[0]-s0[0])+(s1[2]-s0[2]); conns=(s1[1]-s0[1]-1)+(s1[3]-s0[3]-1)
dec=d1[1]-d0[1]; allow=(d1[0]-d0[0])/dec if dec else -1
sec=lambda t: float(t[:-1].split("m")[0])*60+float(t[:-1].split("m")[1])  # bash times: 0m1.234s
gen=sum(sec(t) for t in sys.argv[10].split())
print(f'{r["rps"]:.0f} {lat.get(50,0)/1e6:.2f} {lat.get(99,0)/1e6:.2f} {ticks/hz*1e6/n:.1f} {ok}/{n} '
      f'{allow:.3f} {rc/n:.2f} {rt/hz*1e6/n:.1f} {idp/n:.3f} {conns/n:.3f} {gen*1e6/n:.1f}')
PY
}

echo "# $(date -u +%FT%TZ) $(nproc) CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3),"\
  "$(redis-server --version | cut -d' ' -f3), ghz v0.120.0, opa-envoy-plugin $(basename "$OPA" | sed 's/opa-envoy-plugin-//')"
echo "# -c $CONC -z $DUR, $ROUNDS rounds, $MODE; slow AS latency $LAT; medians"
busy() { local a b; a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
  python3 -c 'import sys; a,b=[list(map(int,x.split()[1:])) for x in sys.argv[1:3]]; d=[y-x for x,y in zip(a,b)]; print(round(100*(sum(d)-d[3]-d[4])/sum(d)))' "$a" "$b"; }
# How much a second vCPU adds here: one CPU-bound thread alone, then one on each vCPU at once.
cpuscale() { local a b c; a=$(taskset -c 0 "$WORK/cpuscale"); read -r b c < <( (taskset -c 0 "$WORK/cpuscale" & taskset -c 1 "$WORK/cpuscale"; wait) | tr '\n' ' ')
  python3 -c "print(f'{($b+$c)/$a:.2f}x of one (alone {$a}, together {$b} + {$c})')"; }
B=$(busy); echo "# machine CPU busy in the second before the runs (our servers idle): $B%"
echo "# two vCPUs busy at once do $(cpuscale): bench/cpuscale"
[ "$B" -le 15 ] || echo "WARN: something else is using the CPU: every number below is skewed"

# --- Main: interleaved rounds -----------------------------------------------------------------
if want main; then
# The baseline receives the same request bytes as the JWT scenarios (a 700-byte token).
SCEN=("noop 127.0.0.1:$((PB+100)) $NOOP_PID - jwt"
      "noop-allow 127.0.0.1:$((PB+101)) $NOOPA_PID - jwt"
      "noop-401 127.0.0.1:$((PB+102)) $NOOPD_PID - none"
      "no-token-401 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) none"
      "jwt-cached 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) jwt"
      "jwt-cached-tool 127.0.0.1:$((PB+6)) $TOOLS_PID 127.0.0.1:$((PB+106)) toolcall"
      "jwt-cached-rules 127.0.0.1:$((PB+8)) $RULES_PID 127.0.0.1:$((PB+108)) toolcall"
      "opaque-L1 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) opaque"
      "invalid-token 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) bad"
      "mix 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) mix"
      "opaque-redis 127.0.0.1:$((PB+4)) $REDISSRV_PID 127.0.0.1:$((PB+104)) redis"
      "jwt-uncached 127.0.0.1:$((PB+3)) $NOCACHE_PID 127.0.0.1:$((PB+103)) jwt"
      "opaque-miss-slowAS 127.0.0.1:$((PB+5)) $SLOWSRV_PID 127.0.0.1:$((PB+105)) unique"
      "opa-jwt 127.0.0.1:$((PB+7)) $OPA_PID - jwt")
if [ -n "$ONLY" ]; then
  keep=(); for s in "${SCEN[@]}"; do [[ ",noop,noop-allow,noop-401,$ONLY," == *",${s%% *},"* ]] && keep+=("$s"); done; SCEN=("${keep[@]}")
fi
# Warm up every target once.
for s in "${SCEN[@]}"; do set -- $s; ghzc -D "$WORK/$5.data" -c "$CONC" -n 2000 "$2" >/dev/null 2>&1; done
for r in $(seq "$ROUNDS"); do for s in "${SCEN[@]}"; do set -- $s; run "$1" "$2" "$3" "$4" "$5"; done; done
declare -A PEAK
for n in noop:$NOOP_PID demo:$DEMO_PID nocache:$NOCACHE_PID redis:$REDISSRV_PID slow:$SLOWSRV_PID opa:$OPA_PID; do
  PEAK[${n%%:*}]=$(rss "${n#*:}" VmHWM); done

printf '\n%-19s %8s %7s %7s %8s %10s %8s %7s %6s | %9s %9s %8s %9s\n' scenario RPS p50_ms p99_ms vs_noop cpu_us/chk cpu/noop gen_us allow% \
  redis_cmd redis_us idp_call new_conn
python3 - "$WORK" "$CONC" "$LAT" "${SCEN[@]}" <<'PY'
import sys,statistics as st
w,conc,lat=sys.argv[1],int(sys.argv[2]),sys.argv[3]; names=[s.split()[0] for s in sys.argv[4:]]
rows={n:[l.split() for l in open(f"{w}/{n}.rows")] for n in names}
f=lambda r,i: float(r[i])
med=lambda n,i: st.median(f(r,i) for r in rows[n])
per=lambda n,m,i: st.median(f(a,i)/f(b,i) for a,b in zip(rows[n],rows[m]))
for n in names:
    allow=med(n,5); a=f"{allow*100:5.1f}" if allow>=0 else "    -"
    print(f"{n:<19} {med(n,0):8.0f} {med(n,1):7.2f} {med(n,2):7.2f} {per(n,'noop',0):7.2f}x {med(n,3):10.1f} {per(n,'noop',3):7.2f}x {med(n,10):7.1f} {a} |"
          f" {med(n,6):9.2f} {med(n,7):9.1f} {med(n,8):8.3f} {med(n,9):9.3f}")
print("(gen_us = ghz's own CPU µs per call; per Check: redis_cmd = Redis commands, redis_us = redis-server CPU µs,")
print(" idp_call = introspection calls, new_conn = new TCP connections to the AS)")
pairs=[(n,"noop-allow") for n in ("jwt-cached","jwt-cached-tool","jwt-cached-rules","opaque-L1") if n in names]+[(n,"noop-401") for n in ("no-token-401","invalid-token") if n in names]
if pairs:
    print("\nThe decision alone: each scenario against the no-op replaying the same response (medians of per-round ratios)")
    print(f"{'scenario':<15} {'replay':<11} {'RPS':>6} {'p99':>6} {'cpu/Check':>10} {'cpu µs +':>9} {'gen_us':>14}")
    for n,m in pairs:
        d=st.median(f(a,3)-f(b,3) for a,b in zip(rows[n],rows[m]))
        print(f"{n:<15} {m:<11} {per(n,m,0):5.2f}x {per(n,m,2):5.2f}x {per(n,m,3):9.2f}x {d:+9.1f} {med(n,10):6.1f} vs {med(m,10):5.1f}")
    print("(the empty no-op's gen_us is "+f"{med('noop',10):.1f}"+": ghz decodes every response into a dynamic message, so a bigger answer")
    print(" costs the load generator more per call; pinned, ghz is saturated and RPS follows its cost, not the server's)")

if {"opa-jwt","jwt-cached","jwt-uncached"} <= set(names):
    print(f"\nmcp-authz jwt-cached vs opa-jwt (medians of per-round ratios): RPS {per('jwt-cached','opa-jwt',0):.2f}x,"
          f" CPU/Check {per('jwt-cached','opa-jwt',3):.3f}x (1/{1/per('jwt-cached','opa-jwt',3):.1f});"
          f" jwt-uncached vs opa-jwt: RPS {per('jwt-uncached','opa-jwt',0):.2f}x, CPU/Check {per('jwt-uncached','opa-jwt',3):.3f}x")
ms=float(lat.rstrip("ms")) if lat.endswith("ms") and not lat.endswith("µs") else None
if "opaque-miss-slowAS" in names and ms:
    print(f"opaque-miss-slowAS: bound = concurrency/latency = {conc}/{ms/1000:g}s = {conc/(ms/1000):.0f} RPS;"
          f" measured {med('opaque-miss-slowAS',0):.0f} ({med('opaque-miss-slowAS',0)/(conc/(ms/1000))*100:.0f}% of it)")
PY
# Calls still in flight when a -z run ends are cut off by ghz; more than 1% non-OK is a problem.
for s in "${SCEN[@]}"; do set -- $s
  awk -v n="$1" '{split($5,a,"/"); if (a[2]-a[1] > a[2]/100) print "WARN " n ": " a[2]-a[1] " of " a[2] " calls not OK"}' "$WORK/$1.rows"
done
printf '\nRSS MB (VmRSS after startup, before any request / VmHWM peak after the rounds):\n'
for n in noop demo nocache redis slow opa; do printf '  %-8s %7s / %7s\n' $n "${IDLE[$n]}" "${PEAK[$n]}"; done
fi

# --- Rate: every server at the same fixed request rate ---------------------------------------------
# A server's CPU per Check depends on its load: the busier it is, the more Checks each wake-up and
# each read or write system call serves. In the main section ghz is the bottleneck, so a server
# whose answers cost ghz more is offered fewer Checks per second and looks dearer per Check. At
# one fixed rate that every server sustains, CPU per Check and latency compare like for like.
if want rate; then
printf '\nRate: every server offered the same %s Checks/s (ghz --rps, -c %s, -z %s), %s rounds, medians\n' "$RATE" "$CONC" "$DUR" "$ROUNDS"
RS=("rate-noop 127.0.0.1:$((PB+100)) $NOOP_PID - jwt" "rate-noop-allow 127.0.0.1:$((PB+101)) $NOOPA_PID - jwt"
    "rate-noop-401 127.0.0.1:$((PB+102)) $NOOPD_PID - none" "rate-jwt-cached 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) jwt"
    "rate-opaque-L1 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) opaque" "rate-no-token-401 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) none"
    "rate-mix 127.0.0.1:$((PB+0)) $DEMO_PID 127.0.0.1:$((PB+1)) mix" "rate-opaque-redis 127.0.0.1:$((PB+4)) $REDISSRV_PID 127.0.0.1:$((PB+104)) redis")
RATEARGS="--rps $RATE"
for r in $(seq "$ROUNDS"); do for x in "${RS[@]}"; do set -- $x; run "$1" "$2" "$3" "$4" "$5"; done; done
RATEARGS=
python3 - "$WORK" "$RATE" "${RS[@]}" <<'PY'
import sys,statistics as st
w,rate=sys.argv[1],int(sys.argv[2]); names=[s.split()[0] for s in sys.argv[3:]]
rows={n:[l.split() for l in open(f"{w}/{n}.rows")] for n in names}
f=lambda r,i: float(r[i])
med=lambda n,i: st.median(f(r,i) for r in rows[n])
per=lambda n,m,i: st.median(f(a,i)/f(b,i) for a,b in zip(rows[n],rows[m]))
replay={"rate-jwt-cached":"rate-noop-allow","rate-opaque-L1":"rate-noop-allow","rate-no-token-401":"rate-noop-401"}
print(f"{'scenario':<19} {'RPS':>7} {'p50_ms':>7} {'p99_ms':>7} {'p99/noop':>8} {'cpu_us/chk':>10} {'cpu/noop':>8} {'cpu/replay':>10} {'allow%':>6}")
for n in names:
    allow=med(n,5); a=f"{allow*100:6.1f}" if allow>=0 else "     -"
    rp=f"{per(n,replay[n],3):9.2f}x" if n in replay else "         -"
    print(f"{n[5:]:<19} {med(n,0):7.0f} {med(n,1):7.2f} {med(n,2):7.2f} {per(n,'rate-noop',2):7.2f}x {med(n,3):10.1f} {per(n,'rate-noop',3):7.2f}x {rp} {a}")
    if med(n,0) < 0.97*rate: print(f"WARN {n[5:]}: did not sustain {rate} Checks/s: lower -q")
PY
fi

# --- Memory: L1 entries (in process) and a real server filled through Redis -----------------------
if want memory; then
printf '\nL1 cache memory (bench/memory: the real cache package, L1 only, typical introspection identities):\n'
"$WORK/memory"
# A real server: L1 large enough to keep every token, Redis on, a fast AS; FILL distinct tokens.
cfg fill 127.0.0.1:$((PB+13)) 127.0.0.1:$((PB+113)) "http://$FAST" "{ l1_size: $((FILL * 2)), secret: { env: BENCH_CACHE_SECRET }, redis: { addrs: [\"$REDIS\"] } }" introspection
serve fill 127.0.0.1:$((PB+13)) 127.0.0.1:$((PB+113)); FILL_PID=$SPID
sleep 1
python3 -c "import json; print(json.dumps({'attributes':{'request':{'http':{'method':'POST','host':'localhost:8080','path':'/mcp','headers':{'authorization':'Bearer bench-fill-$RUNID-{{.RequestNumber}}-abcdefghijklmnopqrstuvwxyz0123456789'}}}}}))" >"$WORK/fill.data"
heap() { curl -sf "http://$1/metrics" | awk '$1=="go_memstats_heap_inuse_bytes" {printf "%.1f", $2/1048576}'; }
rm0=$(rss $FILL_PID); h0=$(heap 127.0.0.1:$((PB+113))); m0=$(rcli info memory | awk -F: '/^used_memory:/ {print $2+0}'); k0=$(rcli dbsize)
ghzc -D "$WORK/fill.data" -c "$CONC" -n "$FILL" 127.0.0.1:$((PB+13)) -O json >"$WORK/fill.json" 2>/dev/null
sleep 1
rm1=$(rss $FILL_PID); h1=$(heap 127.0.0.1:$((PB+113))); m1=$(rcli info memory | awk -F: '/^used_memory:/ {print $2+0}'); k1=$(rcli dbsize)
printf '\nReal server, %d distinct opaque tokens (L1 %d entries + Redis): RSS %s -> %s MB (%.0f B/token), Go heap in use %s -> %s MB;\n' \
  "$FILL" $((FILL * 2)) "$rm0" "$rm1" "$(python3 -c "print(($rm1-$rm0)*1048576/$FILL)")" "$h0" "$h1"
printf '  Redis: %d keys added, used_memory +%.1f MB = %.0f B/entry; fill ran at %s Checks/s\n' $((k1-k0)) \
  "$(python3 -c "print(($m1-$m0)/1048576)")" "$(python3 -c "print(($m1-$m0)/max($k1-$k0,1))")" \
  "$(python3 -c "import json; print(round(json.load(open('$WORK/fill.json'))['rps']))")"
kill $FILL_PID; wait $FILL_PID 2>/dev/null || true
fi

# --- Scale: 3 replicas sharing Redis and the cache secret ------------------------------------------
if want scale; then
SCALE=()
for i in 1 2 3; do
  cfg "replica$i" 127.0.0.1:$((PB+9+i)) 127.0.0.1:$((PB+109+i)) "http://$SLOW" "{ secret: { env: BENCH_CACHE_SECRET }, redis: { addrs: [\"$REDIS\"] } }" introspection
  serve "replica$i" 127.0.0.1:$((PB+9+i)) 127.0.0.1:$((PB+109+i)); SCALE+=($SPID)
done
sleep 1
chk() { "$WORK/mcp-authz" check -addr "$1" -token "$2" | grep -q okResponse || echo "WARN: $1 did not allow" >&2; }
printf '\nScale: 3 replicas (L1 on) sharing one Redis and cache secret; the AS answers in %s\n' "$LAT"
T1=bench-scale-seq-$RUNID; a0=$(counts $SLOW | cut -d' ' -f1)
chk 127.0.0.1:$((PB+10)) $T1; chk 127.0.0.1:$((PB+11)) $T1; chk 127.0.0.1:$((PB+12)) $T1
chk 127.0.0.1:$((PB+10)) $T1; chk 127.0.0.1:$((PB+11)) $T1; chk 127.0.0.1:$((PB+12)) $T1
a1=$(counts $SLOW | cut -d' ' -f1)
echo "  one token, one Check on each replica in turn, twice: $((a1-a0)) introspection call(s) at the AS (expected 1)"
T2=bench-scale-burst-$RUNID
python3 -c "import json; print(json.dumps({'attributes':{'request':{'http':{'method':'POST','host':'localhost:8080','path':'/mcp','headers':{'authorization':'Bearer $T2'}}}}}))" >"$WORK/burst.data"
a0=$(counts $SLOW | cut -d' ' -f1); c0=$(redis_calls); bp=()
for i in 1 2 3; do ghzc -D "$WORK/burst.data" -c "$CONC" -n 3000 127.0.0.1:$((PB+9+i)) >/dev/null 2>&1 & bp+=($!); done
wait "${bp[@]}"
a1=$(counts $SLOW | cut -d' ' -f1); c1=$(redis_calls)
echo "  one new token, 3 x 3000 Checks at once (c=$CONC each): $((a1-a0)) introspection call(s) (expected 1: the first replica"
echo "    to miss claims the token in Redis, the others wait for its entry), $(python3 -c "print(f'{($c1-$c0)/9000:.4f}')") Redis commands per Check"
c0=$(redis_calls); ghzc -D "$WORK/burst.data" -c "$CONC" -z "$DUR" -O json 127.0.0.1:$((PB+11)) >"$WORK/steady.json" 2>/dev/null; c1=$(redis_calls)
n=$(python3 -c "import json; print(json.load(open('$WORK/steady.json'))['count'])")
echo "  steady state, that token on one replica for $DUR ($n Checks, L1 hits): $(python3 -c "print(f'{($c1-$c0)/$n:.5f}')") Redis commands per Check"
echo "  (with L1 off every Check is one GET: see redis_cmd of opaque-redis above)"
for p in "${SCALE[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
fi

# --- Cores: the same server on 1 and on 2 CPUs, ghz unpinned (it competes for the same cores) -----
if want cores; then
printf '\nCores: servers under taskset -c 0 (GOMAXPROCS 1) vs -c 0,1 (GOMAXPROCS 2); ghz unpinned, -c %s -z %s, %s rounds, medians\n' "$CONC" "$DUR" "$ROUNDS"
cfg corecached 127.0.0.1:$((PB+20)) 127.0.0.1:$((PB+120)) http://127.0.0.1:$((PB+2)) '{ l1_size: 100000 }'
cfg coreuncached 127.0.0.1:$((PB+21)) 127.0.0.1:$((PB+121)) http://127.0.0.1:$((PB+2)) '{ l1_size: -1 }'
GEN=()
for cpus in 0 0,1; do
  taskset -c $cpus "$WORK/noop" -addr 127.0.0.1:$((PB+19)) >/dev/null & P0=$!; pids+=($P0); waitport 127.0.0.1:$((PB+19))
  serve corecached 127.0.0.1:$((PB+20)) 127.0.0.1:$((PB+120)) $cpus; P1=$SPID
  serve coreuncached 127.0.0.1:$((PB+21)) 127.0.0.1:$((PB+121)) $cpus; P2=$SPID
  CS=("cores$cpus-noop 127.0.0.1:$((PB+19)) $P0 - jwt" "cores$cpus-jwt-cached 127.0.0.1:$((PB+20)) $P1 127.0.0.1:$((PB+120)) jwt"
      "cores$cpus-jwt-uncached 127.0.0.1:$((PB+21)) $P2 127.0.0.1:$((PB+121)) jwt")
  for s in "${CS[@]}"; do set -- $s; ghzc -D "$WORK/$5.data" -c "$CONC" -n 2000 "$2" >/dev/null 2>&1; done
  for r in $(seq "$ROUNDS"); do for s in "${CS[@]}"; do set -- $s; run "$1" "$2" "$3" "$4" "$5"; done; done
  for p in $P0 $P1 $P2; do kill $p; wait $p 2>/dev/null || true; done
done
echo "(ghz needs about a core of its own: a server allowed on both vCPUs takes CPU from it, so RPS cannot show"
echo " server scaling on this 2-vCPU machine; compare cpu_us, and see bench/README.md)"
python3 - "$WORK" <<'PY'
import statistics as st,sys
w=sys.argv[1]
def med(n,i): return st.median(float(l.split()[i]) for l in open(f"{w}/{n}.rows"))
print(f"{'server':<14} {'RPS 1 CPU':>10} {'RPS 2 CPUs':>11} {'scaling':>8} {'cpu_us 1':>9} {'cpu_us 2':>9} {'implied':>8} {'p99 1':>7} {'p99 2':>7}")
for s in ("noop","jwt-cached","jwt-uncached"):
    a,b=f"cores0-{s}",f"cores0,1-{s}"
    print(f"{s:<14} {med(a,0):10.0f} {med(b,0):11.0f} {med(b,0)/med(a,0):7.2f}x {med(a,3):9.1f} {med(b,3):9.1f} {2*med(a,3)/med(b,3):7.2f}x {med(a,2):7.2f} {med(b,2):7.2f}")
print("(implied = capacity from CPU cost alone, (2 cores / cpu_us 2) / (1 core / cpu_us 1), as if the server had both cores to itself)")
PY
fi
# --- Routes: a cached Check with 1, 100 and 10,000 resources, one per tenant host ----------------
# The request is the jwt-cached one, to the first resource; the others are tenants on their own
# hosts, all with their metadata at the same path. Start-up is from exec to the gRPC port
# listening (YAML parsing, validation, building every route); reload from SIGHUP to the log line
# "configuration reloaded" (the same work, while serving).
if want routes; then
RT=(); declare -A START
for n in 1 100 10000; do
  i=${#RT[@]}
  cfg "routes$n" 127.0.0.1:$((PB+30+i)) 127.0.0.1:$((PB+130+i)) http://127.0.0.1:$((PB+2)) '{ l1_size: 100000 }'
  sed -i 's/^log: { level: error }/log: { level: info }/' "$WORK/routes$n.yaml"
  seq 1 $((n-1)) | awk -v r="$RES" '{print "  - resource: http://tenant-" $1 ".example.com/mcp"
    print "    audiences: [\"" r "\"]"; print "    scopes: { required: [mcp:tools] }"}' >>"$WORK/routes$n.yaml"
  t0=$(date +%s%N); serve "routes$n" 127.0.0.1:$((PB+30+i)) 127.0.0.1:$((PB+130+i)); t1=$(date +%s%N)
  START[$n]=$(( (t1-t0)/1000000 ))
  RT+=("routes-$n 127.0.0.1:$((PB+30+i)) $SPID 127.0.0.1:$((PB+130+i)) jwt")
  RPID[$n]=$SPID
done
reloaded() { grep -c "configuration reloaded" "$WORK/routes10000.log" || true; }
r0=$(reloaded); t0=$(date +%s%N); kill -HUP "${RPID[10000]}"
for _ in $(seq 1000); do [ "$(reloaded)" -gt "$r0" ] && break; sleep 0.01; done; t1=$(date +%s%N)
[ "$(reloaded)" -gt "$r0" ] || echo "WARN: the 10,000-resource server did not log a reload" >&2
RELOAD=$(( (t1-t0)/1000000 ))
for s in "${RT[@]}"; do set -- $s; ghzc -D "$WORK/$5.data" -c "$CONC" -n 2000 "$2" >/dev/null 2>&1; done
for r in $(seq "$ROUNDS"); do for s in "${RT[@]}"; do set -- $s; run "$1" "$2" "$3" "$4" "$5"; done; done
printf '\nRoutes: jwt-cached with 1, 100 and 10,000 resources (one per tenant host); -c %s -z %s, %s rounds, medians\n' "$CONC" "$DUR" "$ROUNDS"
python3 - "$WORK" "${START[1]}" "${START[100]}" "${START[10000]}" "$RELOAD" <<'PY'
import statistics as st,sys
w=sys.argv[1]; start=dict(zip((1,100,10000),sys.argv[2:5])); reload=sys.argv[5]
rows={n:[l.split() for l in open(f"{w}/routes-{n}.rows")] for n in (1,100,10000)}
med=lambda n,i: st.median(float(r[i]) for r in rows[n])
per=lambda n,i: st.median(float(a[i])/float(b[i]) for a,b in zip(rows[n],rows[1]))
print(f"{'resources':>9} {'RPS':>7} {'p99_ms':>7} {'cpu_us/chk':>10} {'cpu/1':>6} {'allow%':>6} {'start_ms':>8}")
for n in (1,100,10000):
    print(f"{n:>9} {med(n,0):7.0f} {med(n,2):7.2f} {med(n,3):10.1f} {per(n,3):5.2f}x {med(n,5)*100:6.1f} {start[n]:>8}")
print(f"(cpu/1 = median of per-round ratios to 1 resource; start_ms = exec to the gRPC port listening;")
print(f" reload of the 10,000-resource configuration, SIGHUP to 'configuration reloaded': {reload} ms)")
PY
for p in "${RPID[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
fi

echo
echo "# done $(date -u +%FT%TZ); machine CPU busy in the last second (servers idle): $(busy)%;"\
  "two vCPUs do $(cpuscale)"
