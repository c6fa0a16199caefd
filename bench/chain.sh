#!/usr/bin/env bash
# Restoring the newest of a chain (docs/BENCHMARKS.md, "Restoring the newest of a chain"):
# for each limit in CHAIN_LIMITS, CHAIN_SNAPSHOTS daily backups of a CHAIN_MB MiB generated
# database (a day of business between each) with `--full-after-changed LIMIT`, then restores,
# SHA-256 only, of the first snapshot (a full) and of the newest, each CHAIN_ROUNDS times,
# one after another. Prints per limit: how many backups were fulls, the backups' total time,
# the repository's size, both restores' best times and the ratio newest / first (the target:
# <= 1.1x).
#
# Usage: bench/chain.sh
# Env:   BENCH_DIR (default /tmp/ivault-chain-bench, wiped), CHAIN_MB (1024),
#        CHAIN_SNAPSHOTS (30), CHAIN_LIMITS ("off 100 50 25"), CHAIN_ROUNDS (2),
#        CHAIN_KEEP (set to keep each limit's repository and database in BENCH_DIR/LIMIT,
#        for comparing builds on them; 1 GiB and 2-4 GiB a limit)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="${BENCH_DIR:-/tmp/ivault-chain-bench}"
IVAULT="$REPO_ROOT/target/release/ivault"
MB="${CHAIN_MB:-1024}"
SNAPSHOTS="${CHAIN_SNAPSHOTS:-30}"
LIMITS="${CHAIN_LIMITS:-off 100 50 25}"
ROUNDS="${CHAIN_ROUNDS:-2}"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }
# Runs a command; prints its seconds to stdout.
timed() {
  local out="$W/time.$$" rc=0
  /usr/bin/time -f '%e' -o "$out" "$@" > "$W/last.out" 2> "$W/last.err" || rc=$?
  ((rc == 0)) || { cat "$W/last.err" >&2; die "$* (exit $rc)"; }
  tail -1 "$out"
}

[[ "$W" == /* && "$W" != "/" && "$W" != "$REPO_ROOT" ]] || die "BENCH_DIR must be an absolute path"
[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install time)"
(cd "$REPO_ROOT" && cargo build --release -q)
rm -rf "$W" && mkdir -p "$W"

results="$W/results.txt"
: > "$results"
for limit in $LIMITS; do
  d="$W/$limit"; mkdir -p "$d"
  db="$d/live.sqlite"; repo="$d/repo"; st="$d/state"
  log "limit $limit: $SNAPSHOTS snapshots of a $MB MiB database"
  "$IVAULT" demo generate --out "$db" --size-mb "$MB" --seed 1 --journal wal >&2
  recipient="$("$IVAULT" --state-dir "$st" key generate --out "$d/key.txt" 2>/dev/null)"
  "$IVAULT" --state-dir "$st" init "$repo" --recipient "$recipient" >/dev/null
  IV=("$IVAULT" --state-dir "$st")
  fulls=0; backup_s=0
  for i in $(seq 1 "$SNAPSHOTS"); do
    ((i == 1)) || "$IVAULT" demo business --db "$db" --seed "$i" >/dev/null 2>&1
    s=$(timed "${IV[@]}" backup "$db" --to "$repo" --full-after-changed "$limit" --json)
    kind=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[0]["kind"])' "$W/last.out")
    [[ "$kind" == full ]] && fulls=$((fulls + 1))
    backup_s=$(python3 -c "print($backup_s + $s)")
  done
  repo_mib=$(du -sm "$repo" | cut -f1)
  first=$("${IV[@]}" snapshots --repo "$repo" --identity "$d/key.txt" --json | python3 -c 'import json, sys; print(min(json.load(sys.stdin), key=lambda s: s["time"])["id"])')
  sync
  first_s=999; newest_s=999
  for _ in $(seq 1 "$ROUNDS"); do
    for which in first newest; do
      snap=$first; [[ $which == newest ]] && snap=latest
      rm -f "$d/r.sqlite"
      s=$(timed "${IV[@]}" restore "$snap" --repo "$repo" --identity "$d/key.txt" --integrity-check off --to "$d/r.sqlite")
      if [[ $which == first ]]; then first_s=$(python3 -c "print(min($first_s, $s))"); else newest_s=$(python3 -c "print(min($newest_s, $s))"); fi
    done
  done
  rm -f "$d/r.sqlite"
  echo "$limit $fulls $backup_s $repo_mib $first_s $newest_s" >> "$results"
  [[ -n "${CHAIN_KEEP:-}" ]] || rm -rf "$repo" "$db" "$db-wal" "$db-shm"
done

python3 - "$results" "$SNAPSHOTS" "$MB" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"{sys.argv[2]} daily snapshots of a {sys.argv[3]} MiB database")
print("| --full-after-changed | fulls | backups, total | repository | first restore | newest restore | newest / first |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for limit, fulls, b, repo, f, n in rows:
    shown = limit if limit == "off" else limit + "%"
    print(f"| {shown} | {fulls} | {float(b):.1f} s | {repo} MiB | {float(f):.2f} s | {float(n):.2f} s | {float(n) / float(f):.2f}x |")
PY
