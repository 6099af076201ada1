#!/usr/bin/env bash
# bench/registry.sh: how Tillit's start, memory, registry change propagation
# and token throughput grow with the number of registered clients.
#
#   bench/registry.sh [-n "10 10000"] [-d 10s] [--storage URL] [--rev REV] [--keep]
#
# For each N: generate a registry of N clients (one ES256 key each), start
# instance a (first start, on an empty store), stop and start it again
# (restart), read its memory, start instance b on the same store, disable
# one client in the file and restart a, and time how long b takes to serve
# the change and how much CPU it spends on it; last, drive a's token
# endpoint for -d. See bench/README.md.
set -euo pipefail

sizes="10 10000"
duration=10s
storage=
rev=
keep=0
poll=2s
while [ $# -gt 0 ]; do
  case $1 in
    -n) sizes=$2; shift 2 ;;
    -d) duration=$2; shift 2 ;;
    --storage) storage=$2; shift 2 ;;
    --rev) rev=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [-n \"10 10000\"] [-d 10s] [--storage URL] [--rev REV] [--keep]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tillit-registry.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$keep" = 1 ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bin"
if [ -n "$rev" ]; then
  mkdir "$work/src"
  git -C "$root" archive "$rev" | tar -x -C "$work/src"
  (cd "$work/src" && go build -o "$work/bin/tillit" ./cmd/tillit)
  echo "tillit from $(git -C "$root" rev-parse --short "$rev")"
else
  (cd "$root" && go build -o "$work/bin/tillit" ./cmd/tillit)
  echo "tillit from the working tree at $(git -C "$root" rev-parse --short HEAD)"
fi
(cd "$root" && go build -o "$work/bin/registrygen" ./bench/registrygen)
export TILLIT_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
tck=$(getconf CLK_TCK)
port_a=9411
port_b=9412

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# cpu PID: user+system CPU seconds of a process so far.
cpu() { awk -v t="$tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
mem() { awk '/VmHWM|VmRSS/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$1/status"; }
wait_ready() { # PORT PID LOG
  for _ in $(seq 1 6000); do
    curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "server died:" >&2; tail -5 "$3" >&2; exit 1; }
    sleep 0.05
  done
  echo "server on $1 did not start" >&2; exit 1
}
start() { # NAME PORT DIR: starts and waits; sets pid
  "$work/bin/tillit" serve --config "$3/$1.yaml" >>"$3/$1.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_ready "$2" "$pid" "$3/$1.log"
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
# log_time FILE MSG SKIP: the time of the first log line with MSG after the
# first SKIP lines, in seconds since the epoch.
log_time() {
  tail -n +"$(($3 + 1))" "$1" | grep -m1 "\"msg\":\"$2\"" | sed 's/.*"time":"\([^"]*\)".*/\1/' |
    xargs -I{} date -d {} +%s.%N
}

for n in $sizes; do
  dir=$work/n$n
  mkdir -p "$dir"
  if [ -n "$storage" ]; then
    # A fresh database for every size: the caller's URL names an empty one.
    PGOPTIONS=--client-min-messages=warning psql "$storage" -qc "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
  fi
  gen() { "$work/bin/registrygen" -n "$n" -out "$dir" -poll "$poll" ${storage:+-storage "$storage"} "$@"; }
  gen -listen 127.0.0.1:$port_a -instance a -file a.yaml
  gen -listen 127.0.0.1:$port_b -instance b -file b.yaml
  size=$(du -h "$dir/a.yaml" | cut -f1)
  echo "== N=$n ($size of YAML), load: $(uptime | sed 's/.*load average: //')"

  t0=$(now); start a $port_a "$dir"; t1=$(now)
  echo "first start   $(secs "$t0" "$t1") s (CPU $(cpu "$pid") s), memory $(mem "$pid")"
  grep '"msg":"registry applied"' "$dir/a.log" | head -1 | wc -c | xargs -I{} echo "applied log line {} bytes"
  stop "$pid"
  t0=$(now); start a $port_a "$dir"; t1=$(now); pid_a=$pid
  echo "restart       $(secs "$t0" "$t1") s (CPU $(cpu "$pid") s), memory $(mem "$pid")"
  sleep 2
  echo "memory (a)    $(mem "$pid_a")"

  start b $port_b "$dir"; pid_b=$pid
  sleep 3 # let b settle: its start is not what is measured

  # wait_b LINES: the time of b's first "registry reloaded" after LINES.
  wait_b() {
    local seen=
    for _ in $(seq 1 1200); do
      seen=$(log_time "$dir/b.log" "registry reloaded" "$1" || true)
      [ -n "$seen" ] && { echo "$seen"; return; }
      sleep 0.05
    done
    echo "b never saw the change" >&2; exit 1
  }

  # A file change: a restarts with bench-1 disabled.
  lines_b=$(wc -l <"$dir/b.log")
  cpu0=$(cpu "$pid_b")
  gen -listen 127.0.0.1:$port_a -instance a -file a.yaml -disable bench-1
  stop "$pid_a"
  t0=$(now); start a $port_a "$dir"; t1=$(now); pid_a=$pid
  seen=$(wait_b "$lines_b")
  cpu1=$(cpu "$pid_b")
  echo "file change   a restarted in $(secs "$t0" "$t1") s; b served it $(secs "$t1" "$seen") s after that; b's CPU meanwhile $(secs "$cpu0" "$cpu1") s"

  # A store write, as self-service makes: the CLI adds a delegation.
  sleep 3
  lines_b=$(wc -l <"$dir/b.log")
  cpu0=$(cpu "$pid_b")
  "$work/bin/tillit" delegation add --config "$dir/a.yaml" --organisation 310900036 --supplier 310900028 >/dev/null
  written=$(now)
  seen=$(wait_b "$lines_b")
  cpu1=$(cpu "$pid_b")
  echo "store write   b served it $(secs "$written" "$seen") s after the write; b's CPU meanwhile $(secs "$cpu0" "$cpu1") s (registry_poll $poll)"
  stop "$pid_b"

  "$work/bin/tillit" bench token --issuer "http://127.0.0.1:$port_a" --client-id bench-0 --key "$dir/client-0.jwk" \
    --scope nhn:bench/api -c 16 --duration "$duration" --server-pid "$pid_a" --json-out "$dir/bench.json" >"$dir/bench.txt" 2>&1 || {
    cat "$dir/bench.txt" >&2; exit 1; }
  jq -r '"throughput    \(.tokens_per_s | floor) tokens/s, server CPU \(.server_cpu_ms_per_token * 1000 | round / 1000) ms/token, errors \(.errors_total), other processes \(.other_processes_cores // 0 | . * 100 | round / 100) cores"' "$dir/bench.json"
  echo "memory (a)    $(mem "$pid_a")"
  stop "$pid_a"
done
