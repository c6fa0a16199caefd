#!/usr/bin/env bash
# Period restore and trace benchmarks (docs/BENCHMARKS.md, "Period restore and trace"):
# PERIOD_SNAPSHOTS snapshots of a PERIOD_MB MiB generated database (a day of business between
# each), then, each under GNU time and one after another:
#   restore   a default `ivault restore` of the newest snapshot (the reference)
#   diff      `restore-period` of one lost month (its invoices and their children deleted)
#   apply     `restore-period --apply` of that month (backs the live database up first)
#   trace     `ivault trace` of one invoice over every snapshot
#   chain     restores of the first snapshot (the full) and of the newest incremental, SHA-256
#             only, before the month is lost (the restore-speed target: newest <= 1.1x first)
# and prints each as a ratio of the restore.
#
# Usage: bench/period.sh
# Env:   BENCH_DIR (default /tmp/ivault-period-bench, wiped), PERIOD_MB (1024),
#        PERIOD_SNAPSHOTS (30), PERIOD_MONTH (2024-03)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="${BENCH_DIR:-/tmp/ivault-period-bench}"
IVAULT="$REPO_ROOT/target/release/ivault"
MB="${PERIOD_MB:-1024}"
SNAPSHOTS="${PERIOD_SNAPSHOTS:-30}"
MONTH="${PERIOD_MONTH:-2024-03}"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }
# Runs a command under GNU time; prints "seconds peak_rss_kib" to stdout. Exit codes in
# OK_CODES (default 0) count as success.
timed() {
  local out="$W/time.$$" rc=0
  /usr/bin/time -f '%e %M' -o "$out" "$@" > "$W/last.out" 2> "$W/last.err" || rc=$?
  [[ " ${OK_CODES:-0} " == *" $rc "* ]] || { cat "$W/last.err" >&2; die "$* (exit $rc)"; }
  tail -1 "$out"
}

[[ "$W" == /* && "$W" != "/" && "$W" != "$REPO_ROOT" ]] || die "BENCH_DIR must be an absolute path"
[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install time)"
command -v sqlite3 >/dev/null || die "sqlite3 is needed (apt-get install sqlite3)"
(cd "$REPO_ROOT" && cargo build --release -q)
rm -rf "$W" && mkdir -p "$W"

db="$W/live.sqlite"; repo="$W/repo"; st="$W/state"
log "generating a $MB MiB database and $SNAPSHOTS snapshots of it"
"$IVAULT" demo generate --out "$db" --size-mb "$MB" --seed 1 --journal wal >&2
recipient="$("$IVAULT" --state-dir "$st" key generate --out "$W/key.txt" 2>/dev/null)"
"$IVAULT" --state-dir "$st" init "$repo" --recipient "$recipient" >/dev/null
cat > "$W/policy.toml" <<TOML
[[source]]
name = "live"
path = "$db"
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
children = [{ table = "invoice_items", fk = "invoice_id" }, { table = "tax_uploads", fk = "invoice_id" }]
status_column = "status"

[[target]]
name = "local"
url = "$repo"

[encryption]
recipients = ["$recipient"]
identity_file = "$W/key.txt"
TOML
P=(--state-dir "$st" --policy "$W/policy.toml")
for i in $(seq 1 "$SNAPSHOTS"); do
  ((i == 1)) || "$IVAULT" demo business --db "$db" --seed "$i" >/dev/null 2>&1
  "$IVAULT" "${P[@]}" backup live >/dev/null
done
key=$(sqlite3 "$db" "SELECT invoice_code || '/' || invoice_no FROM invoices WHERE substr(issue_date, 1, 7) = '$MONTH' LIMIT 1")
[[ -n "$key" ]] || die "no invoice in $MONTH"
lost=$(sqlite3 "$db" "SELECT count(*) FROM invoices WHERE substr(issue_date, 1, 7) = '$MONTH'")
all=$(sqlite3 "$db" "SELECT count(*) FROM invoices")
sync

log "restoring the first snapshot and the newest, SHA-256 only"
first=$("$IVAULT" "${P[@]}" snapshots --repo local --json | python3 -c 'import json, sys; print(min(json.load(sys.stdin), key=lambda s: s["time"])["id"])')
read -r first_s first_kib < <(timed "$IVAULT" "${P[@]}" restore "$first" --repo local --integrity-check off --to "$W/first.sqlite")
read -r newest_s newest_kib < <(timed "$IVAULT" "${P[@]}" restore latest --repo local --integrity-check off --to "$W/newest.sqlite")
rm -f "$W/first.sqlite" "$W/newest.sqlite"

log "default restore of the newest snapshot"
read -r restore_s restore_kib < <(timed "$IVAULT" "${P[@]}" restore latest --repo local --to "$W/restored.sqlite")
rm -f "$W/restored.sqlite"

log "losing $MONTH ($lost of $all invoices) and restoring it"
sqlite3 "$db" "PRAGMA foreign_keys = OFF;
  DELETE FROM invoice_items WHERE invoice_id IN (SELECT id FROM invoices WHERE substr(issue_date, 1, 7) = '$MONTH');
  DELETE FROM tax_uploads WHERE invoice_id IN (SELECT id FROM invoices WHERE substr(issue_date, 1, 7) = '$MONTH');
  DELETE FROM invoices WHERE substr(issue_date, 1, 7) = '$MONTH';"
sync
read -r diff_s diff_kib < <(OK_CODES="14" timed "$IVAULT" "${P[@]}" restore-period live --from "$MONTH" --to "$MONTH" --json)
read -r apply_s apply_kib < <(timed "$IVAULT" "${P[@]}" restore-period live --from "$MONTH" --to "$MONTH" --apply --json)
back=$(sqlite3 "$db" "SELECT count(*) FROM invoices WHERE substr(issue_date, 1, 7) = '$MONTH'")
[[ "$back" == "$lost" ]] || die "the month has $back invoices after the repair, not $lost"

log "trace of $key over $SNAPSHOTS snapshots"
read -r trace_s trace_kib < <(timed "$IVAULT" "${P[@]}" trace live --invoice "$key" --repo local --json)

python3 - <<PY
r, d, a, t = $restore_s, $diff_s, $apply_s, $trace_s
print(f"database: $MB MiB, $SNAPSHOTS snapshots, $MONTH lost: $lost of $all invoices")
print(f"restore (default):      {r:6.1f} s  peak RSS {$restore_kib / 1024:4.0f} MiB")
print(f"restore-period (diff):  {d:6.1f} s  peak RSS {$diff_kib / 1024:4.0f} MiB")
print(f"restore-period --apply: {a:6.1f} s  peak RSS {$apply_kib / 1024:4.0f} MiB")
print(f"diff + apply / restore: {(d + a) / r:.2f}x   (target <= 0.5x)")
print(f"trace:                  {t:6.1f} s  peak RSS {$trace_kib / 1024:4.0f} MiB")
print(f"trace / restore:        {t / r:.2f}x   (target < 2x)")
f, n = $first_s, $newest_s
print(f"restore of the first (full), SHA-256 only:  {f:6.1f} s  peak RSS {$first_kib / 1024:4.0f} MiB")
print(f"restore of the newest, SHA-256 only:        {n:6.1f} s  peak RSS {$newest_kib / 1024:4.0f} MiB")
print(f"newest / first:         {n / f:.2f}x   (target <= 1.1x)")
PY
