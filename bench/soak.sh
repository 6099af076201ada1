#!/usr/bin/env bash
# A soak: Tillit under a steady load for a long time, checked for errors,
# memory growth and latency drift.
#
#   bench/soak.sh [-a ES256|RS256] [--store sqlite|postgres] [-c 16] [-r 1000]
#                 [-n 10] [-i 60s]
#
# Runs n intervals of i each back to back (default 10 × 60 s = 10 minutes)
# with c clients paced at r tokens/s together (a steady load; -r 0 lets
# them go as fast as the server answers), and after each interval records
# tokens/s, p50, p99, errors, the server's resident memory and its Go heap
# in use. It fails (exit 1) on any error, on resident memory at the end
# more than 25 % above what it was after the second interval (the replay
# state holds about two minutes of jtis by then, and the caches are warm),
# on a last-interval p99 more than twice the second interval's, or on a
# paced run that falls more than 5 % short of its rate.
set -euo pipefail

alg=ES256 store=sqlite concurrency=16 rate=1000 intervals=10 interval=60s
while [ $# -gt 0 ]; do
  case "$1" in
    -a) alg=${2:?}; shift 2 ;;
    --store) store=${2:?}; shift 2 ;;
    -c) concurrency=${2:?}; shift 2 ;;
    -r) rate=${2:?}; shift 2 ;;
    -n) intervals=${2:?}; shift 2 ;;
    -i) interval=${2:?}; shift 2 ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[ "$intervals" -ge 2 ] || { echo "soak.sh: -n must be at least 2" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tillit-soak.XXXXXX")
chmod 755 "$work"
pid= pg_pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$pg_pid" ] && { kill "$pg_pid" 2>/dev/null || true; wait "$pg_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgbin() { command -v "$1" 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1; }

(cd "$repo" && go build -o "$work/tillit" ./cmd/tillit)
storage=
if [ "$store" = postgres ]; then
  pgport=$(free_port)
  as_pg=()
  [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
  mkdir -p "$work/pg" && [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
  "${as_pg[@]}" "$(pgbin initdb)" -D "$work/pg/data" -U tillit --auth=trust >/dev/null
  "${as_pg[@]}" "$(pgbin postgres)" -D "$work/pg/data" -p "$pgport" -k '' -c listen_addresses=127.0.0.1 >"$work/pg.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 1 100); do psql -h 127.0.0.1 -p "$pgport" -U tillit -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  storage="postgres://tillit@127.0.0.1:$pgport/postgres?pool_max_conns=16"
fi
"$work/tillit" keys generate --alg ES256 --out "$work/client.jwk" >/dev/null 2>&1
port=$(free_port)
cat >"$work/tillit.yaml" <<EOF2
issuer: http://127.0.0.1:$port
listen: 127.0.0.1:$port
data_dir: .
${storage:+storage: $storage}
keys: {algorithm: $alg}
tokens: {access_token_lifetime: 5m}
apis:
  - {audience: "nhn:deft", name: DEFT, scopes: ["nhn:deft/api"]}
organisations:
  - {number: "310900028", name: Soak supplier AS}
  - {number: "310900036", name: Soak customer AS}
client_systems:
  - {id: soak, name: Soak test, supplier: "310900028"}
clients:
  - {id: soak, name: Soak client, system: soak, organisation: "310900036", scopes: ["nhn:deft/api"], jwks: $(tr -d '\n' <"$work/client.pub.jwk")}
EOF2
TILLIT_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64) "$work/tillit" serve --config "$work/tillit.yaml" >"$work/out.log" 2>"$work/tillit.log" &
pid=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.1; done

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
heap_mb() { curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "go_memstats_heap_inuse_bytes" { printf "%.1f", $2 / 1048576 }'; }
pace="paced at $rate tokens/s"
[ "$rate" = 0 ] && pace="unpaced"
echo "# soak: $intervals × $interval, $concurrency clients $pace, $store, $alg tokens; $(git -C "$repo" rev-parse --short HEAD)"
printf '%-9s %10s %9s %9s %7s %9s %9s\n' interval tokens/s p50_ms p99_ms errors rss_MB heap_MB
for n in $(seq 1 "$intervals"); do
  "$work/tillit" bench token --issuer "http://127.0.0.1:$port" --client-id soak --key "$work/client.jwk" \
    --scope nhn:deft/api -c "$concurrency" --rate "$rate" --duration "$interval" --warmup 0s --server-pid "$pid" \
    --json-out "$work/i$n.json" >/dev/null 2>"$work/i$n.err" || true
  [ -f "$work/i$n.json" ] || { cat "$work/i$n.err" >&2; exit 1; }
  rss=$(rss_mb "$pid") heap=$(heap_mb)
  echo "$rss" >"$work/i$n.rss"
  jq -r --arg n "$n" --arg rss "$rss" --arg heap "$heap" '[$n, (.tokens_per_s|floor), (.latency_ms.p50*10|round/10), (.latency_ms.p99*10|round/10), .errors_total, $rss, $heap] | @tsv' "$work/i$n.json" |
    awk -F'\t' '{ printf "%-9s %10s %9s %9s %7s %9s %9s\n", $1, $2, $3, $4, $5, $6, $7 }'
done

errors=$(jq -s 'map(.errors_total) | add' "$work"/i*.json)
rss2=$(cat "$work/i2.rss") rssN=$(cat "$work/i$intervals.rss")
p99_2=$(jq '.latency_ms.p99' "$work/i2.json") p99_N=$(jq '.latency_ms.p99' "$work/i$intervals.json")
fail=0
[ "$errors" = 0 ] || { echo "FAIL: $errors errors" >&2; fail=1; }
awk -v a="$rss2" -v b="$rssN" 'BEGIN { exit !(b > a * 1.25) }' && { echo "FAIL: resident memory grew from $rss2 MB to $rssN MB" >&2; fail=1; }
awk -v a="$p99_2" -v b="$p99_N" 'BEGIN { exit !(b > a * 2) }' && { echo "FAIL: p99 drifted from $p99_2 ms to $p99_N ms" >&2; fail=1; }
if [ "$rate" != 0 ]; then
  slowest=$(jq -s 'map(.tokens_per_s) | min' "$work"/i*.json)
  awk -v r="$rate" -v s="$slowest" 'BEGIN { exit !(s < r * 0.95) }' && { echo "FAIL: an interval ran at $slowest tokens/s, short of $rate: not a steady load" >&2; fail=1; }
fi
[ "$fail" = 0 ] && echo "OK: no errors; resident memory $rss2 → $rssN MB; p99 $p99_2 → $p99_N ms"
exit "$fail"
