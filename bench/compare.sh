#!/usr/bin/env bash
# Tillit and the oidc-provider peer, side by side in one run on this machine:
# the same client key (the peer's bench-es256), the same API (nhn:deft, DPoP
# required), the same token algorithm, the same load (tillit bench token with
# the same concurrency, duration, warm-up and nonce setting). Each server is
# measured alone while the other idles; both are stopped at the end.
#
#   bench/compare.sh [-a ES256|RS256] [-c 32] [-d 15s] [-w 3s] [--fresh-nonce | --bearer]
#                    [--wait-quiet] [--rev REV] [--keep]
#
# --rev builds Tillit from a commit (git archive) instead of the working tree.
# --wait-quiet waits for the machine to be idle before each measurement and
# repeats (up to 5 times) a measurement in which other processes took CPU.
#
# See bench/README.md.
set -euo pipefail

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

alg=ES256
concurrency=32
duration=15s
warmup=3s
mode=
keep=0
wait_quiet=0
rev=
while [ $# -gt 0 ]; do
  case "$1" in
    -a|--alg) alg=${2:?}; shift 2 ;;
    -c|--concurrency) concurrency=${2:?}; shift 2 ;;
    -d|--duration) duration=${2:?}; shift 2 ;;
    -w|--warmup) warmup=${2:?}; shift 2 ;;
    --fresh-nonce) mode=--fresh-nonce; shift ;;
    --bearer) mode=--bearer; shift ;;
    --keep) keep=1; shift ;;
    --wait-quiet) wait_quiet=1; shift ;;
    --rev) rev=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$alg" in ES256|RS256) ;; *) echo "compare.sh: -a must be ES256 or RS256" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
peer_src=${PEER_SRC:-$repo/../shared/peers/oidc-provider}
tillit_port=${TILLIT_PORT:-9402}
peer_port=${PEER_PORT:-9401}
for tool in go node npm jq curl; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed" >&2; exit 1; }
done
[ -x "$peer_src/run.sh" ] || { echo "compare.sh: no peer at $peer_src (set PEER_SRC)" >&2; exit 1; }
for port in "$tillit_port" "$peer_port"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "compare.sh: something already listens on 127.0.0.1:$port" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tillit-bench.XXXXXX")
tillit_pid=
peer_dir=$work/peer
cleanup() {
  if [ -n "$tillit_pid" ]; then
    kill "$tillit_pid" 2>/dev/null || true
    wait "$tillit_pid" 2>/dev/null || true
  fi
  if [ -f "$peer_dir/peer.pid" ]; then
    (cd "$peer_dir" && ./run.sh stop) || true
  fi
  if [ "$keep" = 1 ]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # URL LOG: until the discovery document answers
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1/.well-known/openid-configuration" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "compare.sh: $1 did not answer; its log:" >&2
  cat "$2" >&2
  exit 1
}

# busy_percent: how busy the machine's CPUs were over the next second.
busy_percent() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  printf '%s\n%s\n' "$a" "$b" | awk '
    { idle[NR] = $5 + $6; total[NR] = 0; for (i = 2; i <= 9; i++) total[NR] += $i }
    END { t = total[2] - total[1]; printf "%d\n", t ? 100 * (t - (idle[2] - idle[1])) / t : 0 }'
}

if [ -n "$rev" ]; then
  echo "== building tillit at $rev" >&2
  mkdir -p "$work/src"
  git -C "$repo" archive "$rev" | tar -x -C "$work/src"
  (cd "$work/src" && go build -o "$work/bin/tillit" ./cmd/tillit)
  built="commit $(git -C "$repo" rev-parse --short "$rev")"
else
  echo "== building tillit from the working tree" >&2
  (cd "$repo" && go build -o "$work/bin/tillit" ./cmd/tillit)
  built="working tree at commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ] && built="$built, with uncommitted changes"
fi

echo "== starting the peer (oidc-provider) in $peer_dir" >&2
# The peer folder is read-only: run a copy (npm ci writes node_modules,
# run.sh writes keys, peer.pid and peer.log next to itself).
cp -R "$peer_src/." "$peer_dir"
chmod -R u+w "$peer_dir"
rm -rf "$peer_dir/node_modules" "$peer_dir/.keys" "$peer_dir/peer.pid" "$peer_dir/peer.log"
if ! (cd "$peer_dir" && PEER_PORT=$peer_port PEER_TOKEN_ALG=$alg PEER_DPOP_NONCE=1 ./run.sh) >"$work/peer-start.log" 2>&1; then
  cat "$work/peer-start.log" >&2
  exit 1
fi
peer_pid=$(cat "$peer_dir/peer.pid")
key=$peer_dir/.keys/client-es256.private.jwk.json

echo "== starting tillit serve" >&2
mkdir -p "$work/tillit"
allow_bearer=false
[ "$mode" = --bearer ] && allow_bearer=true
# The client is the peer's bench-es256 with its public key only, so both
# servers verify the same assertions and proofs.
public_jwk=$(jq -c 'del(.d, .p, .q, .dp, .dq, .qi)' "$key")
cat >"$work/tillit/tillit.yaml" <<EOF
issuer: http://127.0.0.1:$tillit_port
listen: 127.0.0.1:$tillit_port
data_dir: .
keys:
  algorithm: $alg
tokens:
  access_token_lifetime: 5m   # the peer's accessTokenTTL
apis:
  - audience: nhn:deft
    name: DEFT
    scopes: [nhn:deft/api]
    allow_bearer: $allow_bearer
organisations:
  - {number: "310900028", name: Bench supplier AS}
  - {number: "310900036", name: Bench customer AS}
client_systems:
  - {id: bench, name: Load test, supplier: "310900028"}
clients:
  - id: bench-es256
    name: Load test client (the peer's bench-es256 key)
    system: bench
    organisation: "310900036"
    scopes: [nhn:deft/api]
    jwks: $public_jwk
EOF
# Outside --dev, serve needs a key-encryption key; a new one per run.
TILLIT_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64) \
  "$work/bin/tillit" serve --config "$work/tillit/tillit.yaml" >"$work/tillit/stdout.log" 2>"$work/tillit/tillit.log" &
tillit_pid=$!
wait_for "http://127.0.0.1:$tillit_port" "$work/tillit/tillit.log"

# other_centicores FILE: the CPU other processes took during a run, in
# hundredths of a core.
other_centicores() { jq '.other_processes_cores // 0 | . * 100 | round' "$1"; }

bench() { # NAME ISSUER PID
  local busy attempt attempts=1 best=
  [ "$wait_quiet" = 1 ] && attempts=5
  for attempt in $(seq 1 "$attempts"); do
    busy=$(busy_percent)
    if [ "$wait_quiet" = 1 ]; then
      # Other work on the machine takes CPU from the server and the load
      # generator alike; wait (up to 10 minutes) for it to stop.
      for _ in $(seq 1 600); do
        [ "$busy" -lt 10 ] && break
        echo "== waiting: the machine is $busy% busy before $1" >&2
        busy=$(busy_percent)
      done
    fi
    echo "== $1, attempt $attempt (machine $busy% busy just before)" >&2
    "$work/bin/tillit" bench token --issuer "$2" --client-id bench-es256 --key "$key" --scope nhn:deft/api \
      -c "$concurrency" --duration "$duration" --warmup "$warmup" --server-pid "$3" $mode \
      --json-out "$work/$1.$attempt.json" >"$work/$1.$attempt.txt" || true
    [ -f "$work/$1.$attempt.json" ] || { cat "$work/$1.$attempt.txt" >&2; exit 1; }
    # Keep the run that other processes disturbed least.
    if [ -z "$best" ] || [ "$(other_centicores "$work/$1.$attempt.json")" -lt "$(other_centicores "$work/$1.$best.json")" ]; then
      best=$attempt
    fi
    [ "$(other_centicores "$work/$1.$attempt.json")" -le 10 ] && break
    [ "$attempt" -lt "$attempts" ] && echo "== $1: other processes took CPU during the run; again" >&2
  done
  cp "$work/$1.$best.json" "$work/$1.json"
  echo "== $1"
  cat "$work/$1.$best.txt"
  echo
}

mode_text="DPoP, each client keeps the server's nonce"
[ "$mode" = --fresh-nonce ] && mode_text="DPoP, a nonce round trip for every token (--fresh-nonce)"
[ "$mode" = --bearer ] && mode_text="Bearer, no DPoP"
cat <<EOF
# Tillit vs oidc-provider $(date -u +%Y-%m-%dT%H:%M:%SZ)
tillit:   built from the $built
machine:  $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(go version | cut -d' ' -f3), node $(node --version)
load:     $concurrency clients, $warmup warm-up, $duration measured; $mode_text
          client key ES256 (assertions and proofs), access tokens $alg
tillit:   pid $tillit_pid, SQLite in $work/tillit, WAL, synchronous=FULL (fsync per group commit):
          assertion and proof jtis are durable before the token is sent
peer:     pid $peer_pid, oidc-provider $(jq -r .version "$peer_dir/node_modules/oidc-provider/package.json"), jtis in an in-memory Map (nothing on disk)

EOF
bench tillit "http://127.0.0.1:$tillit_port" "$tillit_pid"
bench oidc-provider "http://127.0.0.1:$peer_port" "$peer_pid"

# One line per figure: Tillit, the peer, and Tillit divided by the peer.
jq -r -n --slurpfile t "$work/tillit.json" --slurpfile p "$work/oidc-provider.json" --arg alg "$alg" '
  def f(x; n): x as $x | n as $n |
    if $x == null then "-" else ($x * pow(10; $n) | round / pow(10; $n) | tostring) end;
  def ratio(a; b): a as $a | b as $b |
    if $a == null or $b == null or $b == 0 then "" else f($a / $b; 2) + "x" end;
  $t[0] as $t | $p[0] as $p |
  ["figure", "tillit", "oidc-provider", "tillit/peer"],
  ["access tokens", $alg, $alg, ""],
  (
    ["tokens/s", ($t.tokens_per_s), ($p.tokens_per_s), 0, true],
    ["latency p50 ms", $t.latency_ms.p50, $p.latency_ms.p50, 1, true],
    ["latency p99 ms", $t.latency_ms.p99, $p.latency_ms.p99, 1, true],
    ["server CPU ms/token", $t.server_cpu_ms_per_token, $p.server_cpu_ms_per_token, 3, true],
    ["generator CPU ms/token", $t.generator_cpu_ms_per_token, $p.generator_cpu_ms_per_token, 3, true],
    ["server cores", $t.server_cores, $p.server_cores, 2, false],
    ["server busiest thread, cores", $t.server_busiest_thread_cores, $p.server_busiest_thread_cores, 2, false],
    ["generator cores", $t.generator_cores, $p.generator_cores, 2, false],
    ["machine busy %", $t.machine_busy_percent, $p.machine_busy_percent, 0, false],
    ["machine iowait %", $t.machine_iowait_percent, $p.machine_iowait_percent, 1, false],
    ["other processes, cores", $t.other_processes_cores, $p.other_processes_cores, 2, false],
    ["nonce round trips", $t.nonce_round_trips, $p.nonce_round_trips, 0, false],
    ["errors", $t.errors_total, $p.errors_total, 0, false]
    | [.[0], f(.[1]; .[3]), f(.[2]; .[3]), (if .[4] then ratio(.[1]; .[2]) else "" end)]
  )
  | @tsv' | column -t -s $'\t'
echo

status=0
for name in tillit oidc-provider; do
  n=$(jq .errors_total "$work/$name.json")
  if [ "$n" != 0 ]; then
    echo "compare.sh: $name: $n tokens failed" >&2
    status=1
  fi
  if [ "$(other_centicores "$work/$name.json")" -gt 10 ]; then
    echo "compare.sh: $name: other processes took $(jq '.other_processes_cores * 100 | round / 100' "$work/$name.json") cores during the run: the figures are low (--wait-quiet)" >&2
  fi
done
exit $status
