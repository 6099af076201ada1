#!/usr/bin/env bash
# What the audit log costs on disk (SQLite), and what callers without a
# client's key can make the server write.
#
#   bench/diskcost.sh [-n 100000] [-c 16] [--flood 150s] [--keep]
#
# 1. Starts `tillit serve` on a new data folder, stops it, and measures the
#    empty database.
# 2. Starts it again and issues at least N ES256 DPoP tokens with
#    `tillit bench token` (-c clients), in 20 s runs, noting the largest WAL
#    seen; stops the server, checkpoints the WAL (TRUNCATE) and measures the
#    database, the WAL and the audit log's own pages (dbstat).
# 3. Starts it again and floods it for --flood with requests from callers
#    without a key, on two fronts at once: `tillit bench token` with a key
#    the server does not know (a bad signature each), and curl sending
#    unparseable requests; then stops it and counts the audit records the
#    flood left and the refusals their aggregates sum up.
#
# Needs go, curl (with --parallel), sqlite3 (with dbstat) and jq.
set -euo pipefail

n=100000 concurrency=16 flood=150s keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?}; shift 2 ;;
    -c) concurrency=${2:?}; shift 2 ;;
    --flood) flood=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tillit-diskcost.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== building tillit" >&2
(cd "$repo" && go build -o "$work/tillit" ./cmd/tillit)
"$work/tillit" keys generate --alg ES256 --out "$work/client.jwk" >/dev/null
"$work/tillit" keys generate --alg ES256 --out "$work/stranger.jwk" >/dev/null
public_jwk=$(tr -d '\n' <"$work/client.pub.jwk")
kek=$(head -c 32 /dev/urandom | base64)
port=$(free_port)
url=http://127.0.0.1:$port
mkdir -p "$work/data"
db=$work/data/tillit.db
cat >"$work/tillit.yaml" <<EOF
issuer: $url
listen: 127.0.0.1:$port
data_dir: $work/data
instance: disk-1
keys: {algorithm: ES256}
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
EOF

start() {
  TILLIT_KEY_ENCRYPTION_KEY=$kek "$work/tillit" serve --config "$work/tillit.yaml" >>"$work/out.log" 2>>"$work/tillit.log" &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && return
    sleep 0.1
  done
  echo "diskcost.sh: the server did not get ready" >&2
  exit 1
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
}
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
q() { sqlite3 -readonly "$db" "$1"; }
audit_bytes() { q "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ('audit_log', 'audit_log_time');"; }

echo "== empty database" >&2
start
stop
empty_db=$(size "$db")
empty_audit=$(audit_bytes)

echo "== issuing at least $n tokens with $concurrency clients" >&2
start
max_wal=0
while :; do
  "$work/tillit" bench token --issuer "$url" --client-id bench --key "$work/client.jwk" --scope nhn:deft/api \
    -c "$concurrency" -d 20s --warmup 0s >>"$work/bench.txt" 2>>"$work/bench.err"
  wal=$(size "$db-wal")
  [ "$wal" -gt "$max_wal" ] && max_wal=$wal
  issued=$(q "SELECT count(*) FROM audit_log WHERE outcome = 'issued';")
  echo "   $issued issued, WAL $wal bytes" >&2
  [ "$issued" -ge "$n" ] && break
done
stop
records=$(q "SELECT count(*) FROM audit_log;")
jtis=$(q "SELECT count(*) FROM jti_log;")
db_bytes=$(size "$db")
wal_bytes=$(size "$db-wal")
audit=$(audit_bytes)

echo "== flood without a key for $flood" >&2
start
before=$(q "SELECT count(*) FROM audit_log;")
flood_start=$(date +%s)
timeout "$flood" "$work/tillit" bench token --issuer "$url" --client-id bench --key "$work/stranger.jwk" \
  --scope nhn:deft/api -c "$concurrency" -d "$flood" --warmup 0s --json-out "$work/flood.json" >"$work/flood.txt" 2>&1 &
bad_sig=$!
timeout "$flood" curl -s --no-progress-meter -o /dev/null --parallel --parallel-max 8 -X POST \
  -H 'Content-Type: application/x-www-form-urlencoded' -d 'grant_type=%zz' "$url/connect/token?x=[1-100000000]" || true
wait "$bad_sig" || true
flood_end=$(date +%s)
stop
after=$(q "SELECT count(*) FROM audit_log;")
aggregates=$(q "SELECT count(*) FROM audit_log WHERE outcome = 'refused_aggregate' AND seq > $before;")
per_request=$(q "SELECT count(*) FROM audit_log WHERE outcome <> 'refused_aggregate' AND seq > $before;")
refused=$(q "SELECT coalesce(sum(json_extract(details, '\$.total')), 0) FROM audit_log WHERE outcome = 'refused_aggregate' AND seq > $before;")

echo "# $(git -C "$repo" rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
jq -n --argjson records "$records" --argjson db "$db_bytes" --argjson wal "$wal_bytes" --argjson max_wal "$max_wal" \
  --argjson empty_db "$empty_db" --argjson audit "$audit" --argjson empty_audit "$empty_audit" --arg jtis "$jtis" \
  --argjson secs "$((flood_end - flood_start))" --argjson written "$((after - before))" \
  --argjson aggregates "$aggregates" --argjson per_request "$per_request" --argjson refused "$refused" '
  { tokens: { records: $records, db_bytes: $db, wal_bytes_after_checkpoint: $wal, largest_wal_bytes_seen: $max_wal,
              jti_log_rows_left: $jtis,
              db_bytes_per_token: (($db - $empty_db) / $records),
              audit_bytes_per_record: (($audit - $empty_audit) / $records),
              db_gib_per_million_tokens: (($db - $empty_db) / $records * 1e6 / 1073741824) },
    flood: { seconds: $secs, refused: $refused, records_written: $written,
             aggregate_records: $aggregates, per_request_records: $per_request } }'
