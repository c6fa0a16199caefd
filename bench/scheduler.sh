#!/usr/bin/env bash
# Scheduler benchmarks (docs/BENCHMARKS.md, "Many databases" and "Prune"):
#   many   MANY_COUNT small databases (about MANY_KIB KiB each) backed up by one `ivault run`
#          of a glob policy, against one `ivault backup` of a single database holding the
#          same rows; prints the ratio and the cost per database.
#   prune  PRUNE_SNAPSHOTS snapshots of a PRUNE_MB MiB database (a "day of business" between
#          each), `forget --keep-last` half, then the prune that marks and the prune that
#          deletes; prints the time, peak RSS and bytes freed of each.
#
# Usage: bench/scheduler.sh [many|prune|all]          (default all)
# Env:   BENCH_DIR (default /tmp/ivault-sched-bench, wiped), MANY_COUNT (1000), MANY_KIB (300),
#        PRUNE_MB (1024), PRUNE_SNAPSHOTS (30)
set -euo pipefail

WHAT="${1:-all}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="${BENCH_DIR:-/tmp/ivault-sched-bench}"
IVAULT="$REPO_ROOT/target/release/ivault"
MANY_COUNT="${MANY_COUNT:-1000}"
MANY_KIB="${MANY_KIB:-300}"
PRUNE_MB="${PRUNE_MB:-1024}"
PRUNE_SNAPSHOTS="${PRUNE_SNAPSHOTS:-30}"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }
# Runs a command under GNU time; prints "seconds peak_rss_kib" to stdout.
timed() {
  local out="$W/time.$$"
  /usr/bin/time -f '%e %M' -o "$out" "$@" > "$W/last.out" 2> "$W/last.err" || {
    cat "$W/last.err" >&2; die "$*"; }
  cat "$out"
}

[[ "$W" == /* && "$W" != "/" && "$W" != "$REPO_ROOT" ]] || die "BENCH_DIR must be an absolute path"
[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install time)"
(cd "$REPO_ROOT" && cargo build --release -q)
rm -rf "$W" && mkdir -p "$W"

many() {
  log "generating $MANY_COUNT databases of about $MANY_KIB KiB, and one with all their rows"
  mkdir -p "$W/branches"
  python3 - "$W" "$MANY_COUNT" "$MANY_KIB" <<'EOF'
import sqlite3, sys, random
w, count, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = kib * 1024 // 220
schema = """CREATE TABLE invoices (id INTEGER PRIMARY KEY, invoice_code TEXT NOT NULL,
  invoice_no TEXT NOT NULL, issue_date TEXT NOT NULL, total_cents INTEGER NOT NULL,
  memo TEXT NOT NULL)"""
def fill(c, branch, n):
    r = random.Random(branch)
    c.executemany("INSERT INTO invoices (invoice_code, invoice_no, issue_date, total_cents, memo) VALUES (?,?,?,?,?)",
        [(f"B{branch:04}", f"{i:08}", f"2025-{1 + i % 12:02}-{1 + i % 28:02}", r.randrange(100, 10**7),
          "".join(r.choice("abcdefghij klmnop") for _ in range(150))) for i in range(n)])
one = sqlite3.connect(f"{w}/one.sqlite")
one.execute("PRAGMA journal_mode=WAL"); one.execute(schema)
for b in range(count):
    c = sqlite3.connect(f"{w}/branches/branch{b:04}.sqlite")
    c.execute("PRAGMA journal_mode=WAL"); c.execute(schema)
    fill(c, b, rows); c.commit(); c.close()
    fill(one, b, rows)
one.commit(); one.close()
EOF
  local total one_bytes
  total=$(du -cb "$W"/branches/*.sqlite | tail -1 | cut -f1)
  one_bytes=$(stat -c %s "$W/one.sqlite")
  local recipient
  recipient="$("$IVAULT" --state-dir "$W/state-many" key generate --out "$W/key.txt" 2>/dev/null)"
  "$IVAULT" --state-dir "$W/state-many" init "$W/repo-many" --recipient "$recipient" >/dev/null
  "$IVAULT" --state-dir "$W/state-one" init "$W/repo-one" --recipient "$recipient" >/dev/null
  cat > "$W/branches.toml" <<EOF
[[source]]
glob = "$W/branches/*.sqlite"

[[target]]
name = "local"
url = "$W/repo-many"

[encryption]
recipients = ["$recipient"]

[schedule]
incremental = "0 1 * * *"
EOF
  sync
  log "one ivault run over $MANY_COUNT databases"
  read -r many_s many_kib < <(timed "$IVAULT" --state-dir "$W/state-many" run --policy "$W/branches.toml" --json)
  local ok
  ok=$(python3 -c 'import json,sys; print(sum(j["ok"] for j in json.load(open(sys.argv[1]))["jobs"]))' "$W/last.out")
  [[ "$ok" == "$MANY_COUNT" ]] || die "only $ok of $MANY_COUNT backups succeeded"
  log "one ivault backup of a single database with the same rows"
  read -r one_s one_kib < <(timed "$IVAULT" --state-dir "$W/state-one" backup "$W/one.sqlite" --to "$W/repo-one")
  python3 - <<EOF
many, one, n = $many_s, $one_s, $MANY_COUNT
print(f"many: {n} databases, {$total / 2**20:.0f} MiB in all: {many:.1f} s, peak RSS {$many_kib / 1024:.0f} MiB")
print(f"one:  1 database, {$one_bytes / 2**20:.0f} MiB: {one:.1f} s, peak RSS {$one_kib / 1024:.0f} MiB")
print(f"ratio many/one: {many / one:.2f}x   (target <= 2x)")
print(f"per-database overhead: {(many - one) / n * 1000:.0f} ms")
EOF
}

prune() {
  log "generating a $PRUNE_MB MiB database and $PRUNE_SNAPSHOTS snapshots of it"
  local st="$W/state-prune" db="$W/prune.sqlite" repo="$W/repo-prune"
  "$IVAULT" demo generate --out "$db" --size-mb "$PRUNE_MB" --seed 1 --journal wal >&2
  local recipient
  recipient="$("$IVAULT" --state-dir "$st" key generate --out "$W/prune-key.txt" 2>/dev/null)"
  "$IVAULT" --state-dir "$st" init "$repo" --recipient "$recipient" >/dev/null
  for i in $(seq 1 "$PRUNE_SNAPSHOTS"); do
    ((i == 1)) || "$IVAULT" demo business --db "$db" --seed "$i" >/dev/null 2>&1
    "$IVAULT" --state-dir "$st" backup "$db" --to "$repo" --source-check off >/dev/null
  done
  local before
  before=$(du -sb "$repo" | cut -f1)
  "$IVAULT" --state-dir "$st" forget --repo "$repo" --identity "$W/prune-key.txt" \
    --keep-last $((PRUNE_SNAPSHOTS / 2)) >/dev/null
  sync
  log "prune: mark"
  read -r mark_s mark_kib < <(timed "$IVAULT" --state-dir "$st" prune --repo "$repo" --identity "$W/prune-key.txt" --json)
  cp "$W/last.out" "$W/prune-mark.json"
  log "prune: delete"
  read -r del_s del_kib < <(timed "$IVAULT" --state-dir "$st" prune --repo "$repo" --identity "$W/prune-key.txt" --grace 0s --json)
  cp "$W/last.out" "$W/prune-delete.json"
  local after
  after=$(du -sb "$repo" | cut -f1)
  python3 - "$W/prune-mark.json" "$W/prune-delete.json" <<EOF
import json, sys
m, d = (json.load(open(p)) for p in sys.argv[1:3])
print(f"repository: {$before / 2**20:.0f} MiB before, {$after / 2**20:.0f} MiB after")
print(f"mark:   {$mark_s:.1f} s, peak RSS {$mark_kib / 1024:.0f} MiB, {m['marked']} packs marked ({m['repacked']} repacked into {m['repack_packs_written']})")
print(f"delete: {$del_s:.1f} s, peak RSS {$del_kib / 1024:.0f} MiB, {d['packs_deleted']} packs deleted, {d['bytes_freed'] / 2**20:.0f} MiB freed")
EOF
  "$IVAULT" --state-dir "$st" check --repo "$repo" --identity "$W/prune-key.txt" >/dev/null \
    || die "the repository does not check clean after the prune"
}

case "$WHAT" in
  many) many ;;
  prune) prune ;;
  all) many; prune ;;
  *) die "usage: bench/scheduler.sh [many|prune|all]" ;;
esac
