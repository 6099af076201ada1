#!/usr/bin/env bash
# Tillit's token endpoint under load on its two stores and with one or two
# instances, measured with `tillit bench token`, next to the cost of the
# cryptography alone measured in the same run.
#
#   bench/cluster.sh [-a ES256|RS256] [--store sqlite|postgres] [--instances 1|2]
#                    [-c 32] [-d 20s] [-w 5s] [--commit-delay 1ms] [--keep]
#
# PostgreSQL is started here, durable (fsync, synchronous_commit on), in a
# temporary folder on a free port; the instances share it (and one issuer).
# With two instances the load is split between them (-c/2 clients each, two
# load generators running at once) and the token rates add up.
#
# See bench/README.md.
set -euo pipefail

alg=ES256 store=sqlite instances=1 concurrency=32 duration=20s warmup=5s keep=0 commit_delay=
while [ $# -gt 0 ]; do
  case "$1" in
    -a) alg=${2:?}; shift 2 ;;
    --store) store=${2:?}; shift 2 ;;
    --instances) instances=${2:?}; shift 2 ;;
    -c) concurrency=${2:?}; shift 2 ;;
    -d) duration=${2:?}; shift 2 ;;
    -w) warmup=${2:?}; shift 2 ;;
    --commit-delay) commit_delay=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
case "$alg/$store/$instances" in
  ES256/*/* | RS256/*/*) ;; *) echo "cluster.sh: -a ES256 or RS256" >&2; exit 2 ;;
esac
case "$store" in sqlite|postgres) ;; *) echo "cluster.sh: --store sqlite or postgres" >&2; exit 2 ;; esac
case "$instances" in 1|2) ;; *) echo "cluster.sh: --instances 1 or 2" >&2; exit 2 ;; esac
[ "$store" = sqlite ] && [ "$instances" = 2 ] && { echo "cluster.sh: two instances need --store postgres" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tillit-cluster.XXXXXX")
chmod 755 "$work"
pids=()
pg_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$pg_pid" ] && { kill "$pg_pid" 2>/dev/null || true; wait "$pg_pid" 2>/dev/null || true; }
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgbin() { # the newest PostgreSQL binary of that name
  command -v "$1" 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}

echo "== building tillit" >&2
(cd "$repo" && go build -o "$work/tillit" ./cmd/tillit)

storage=
if [ "$store" = postgres ]; then
  port=$(free_port)
  as_pg=()
  [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
  mkdir -p "$work/pg" && [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
  "${as_pg[@]}" "$(pgbin initdb)" -D "$work/pg/data" -U tillit --auth=trust >"$work/pg-init.log" 2>&1
  "${as_pg[@]}" "$(pgbin postgres)" -D "$work/pg/data" -p "$port" -k '' -c listen_addresses=127.0.0.1 \
    -c fsync=on -c synchronous_commit=on -c max_connections=200 >"$work/pg.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 1 100); do
    psql -h 127.0.0.1 -p "$port" -U tillit -d postgres -c 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  storage="postgres://tillit@127.0.0.1:$port/postgres?pool_max_conns=32"
fi

# A client with an ES256 key, as in compare.sh.
"$work/tillit" keys generate --alg ES256 --out "$work/client.jwk" >/dev/null
public_jwk=$(cat "$work/client.pub.jwk" | tr -d '\n')
kek=$(head -c 32 /dev/urandom | base64)
issuer=http://127.0.0.1:$(free_port)   # the load balancer's name; each instance listens elsewhere

declare -a urls
for i in $(seq 1 "$instances"); do
  port=$(free_port)
  mkdir -p "$work/i$i"
  cat >"$work/i$i/tillit.yaml" <<EOF2
issuer: $issuer
listen: 127.0.0.1:$port
data_dir: .
instance: bench-$i
${storage:+storage: $storage}
${commit_delay:+commit_delay: $commit_delay}
keys: {algorithm: $alg}
tokens: {access_token_lifetime: 5m}
apis:
  - {audience: "nhn:deft", name: DEFT, scopes: ["nhn:deft/api"]}
organisations:
  - {number: "310900028", name: Bench supplier AS}
  - {number: "310900036", name: Bench customer AS}
client_systems:
  - {id: bench, name: Load test, supplier: "310900028"}
clients:
  - {id: bench, name: Load test client, system: bench, organisation: "310900036", scopes: ["nhn:deft/api"], jwks: $public_jwk}
EOF2
  TILLIT_KEY_ENCRYPTION_KEY=$kek "$work/tillit" serve --config "$work/i$i/tillit.yaml" >"$work/i$i/out.log" 2>"$work/i$i/tillit.log" &
  pids+=($!)
  urls[$i]=http://127.0.0.1:$port
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "${urls[$i]}/readyz" 2>/dev/null && break
    sleep 0.1
  done
done

echo "== crypto-only rate, before" >&2
crypto() {
  (cd "$repo" && go test -run '^$' -bench "CryptoOnly/$alg\$" -benchtime 5000x ./internal/token) |
    awk '/^Benchmark/ { for (i = 1; i < NF; i++) { if ($(i+1) == "tokens/s") t = $i; if ($(i+1) == "cpu-us/token") c = $i } } END { print t, c }'
}
read -r crypto_rate crypto_cpu < <(crypto)

echo "== load: $instances instance(s), $store, $alg, $concurrency clients" >&2
per=$((concurrency / instances))
for i in $(seq 1 "$instances"); do
  "$work/tillit" bench token --issuer "$issuer" --connect "${urls[$i]#http://}" --client-id bench --key "$work/client.jwk" \
    --scope nhn:deft/api -c "$per" --duration "$duration" --warmup "$warmup" --server-pid "${pids[$((i-1))]}" \
    --json-out "$work/r$i.json" >"$work/r$i.txt" &
  loads+=($!)
done
for p in "${loads[@]}"; do wait "$p" || true; done

read -r crypto_rate2 crypto_cpu2 < <(crypto)
crypto_rate=$(awk -v a="$crypto_rate" -v b="$crypto_rate2" 'BEGIN { print (a + b) / 2 }')
crypto_cpu=$(awk -v a="$crypto_cpu" -v b="$crypto_cpu2" 'BEGIN { print (a + b) / 2 }')

echo "# $instances instance(s), $store, $alg tokens, $concurrency clients, $duration after $warmup warm-up${commit_delay:+, commit_delay $commit_delay}; $(git -C "$repo" rev-parse --short HEAD)"
for i in $(seq 1 "$instances"); do cat "$work/r$i.txt"; echo; done
jq -s --arg cr "$crypto_rate" --arg cc "$crypto_cpu" '
  { tokens_per_s: (map(.tokens_per_s) | add),
    p50_ms: (map(.latency_ms.p50) | max), p99_ms: (map(.latency_ms.p99) | max),
    errors: (map(.errors_total) | add),
    server_cpu_ms_per_token: ((map(.server_cpu_s) | add) / (map(.tokens) | add) * 1000),
    generator_cpu_ms_per_token: ((map(.generator_cpu_s) | add) / (map(.tokens) | add) * 1000),
    other_processes_cores: (map(.other_processes_cores) | max),
    crypto_only_tokens_per_s: ($cr | tonumber), crypto_only_cpu_ms_per_token: (($cc | tonumber) / 1000) }
  | . + { rate_vs_crypto: (.tokens_per_s / .crypto_only_tokens_per_s),
          cpu_vs_crypto: (.crypto_only_cpu_ms_per_token / .server_cpu_ms_per_token) }' "$work"/r*.json
