# Process handling shared by deploy/*/run.sh: start a process, wait for its port, stop every
# process started, pick free ports. Source it after `set -euo pipefail`; the script's EXIT trap
# calls stop_started (then does its own reporting).

pids=()

# start LOG COMMAND...: runs COMMAND in the background, its output in LOG; its pid is in $last.
start() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  last=$!
  pids+=("$last")
}

# wait_port NAME PORT PID LOG [SECONDS]: until 127.0.0.1:PORT accepts connections, 20 s at most
# by default. Exits with the tail of LOG when PID ends first or the time runs out.
wait_port() {
  local name=$1 port=$2 pid=$3 log=$4 secs=${5:-20}
  for _ in $(seq $((secs * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "$name exited at start:"; tail -n 30 "$log"; exit 1; fi
    sleep 0.1
  done
  echo "$name did not listen on 127.0.0.1:$port within $secs s:"; tail -n 30 "$log"; exit 1
}

# stop_started: stops every process start started, and waits for them.
stop_started() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

# free_ports N: N distinct loopback ports nothing listens on now, below the kernel's ephemeral
# range so that no outgoing connection takes one before its server binds it.
free_ports() {
  local out=() p low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  while [ ${#out[@]} -lt "$1" ]; do
    p=$((10000 + RANDOM % (low - 10000)))
    [[ " ${out[*]} " == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    out+=("$p")
  done
  echo "${out[@]}"
}
