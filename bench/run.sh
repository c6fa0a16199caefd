#!/usr/bin/env bash
# Side-by-side benchmark: ivault against the backups a user would otherwise build
# (sqlite3 .backup | zstd | age, restic, borg) on the same live SQLite invoice database.
#
# Usage: bench/run.sh [SIZE_MB]        (default 1024; docs/BENCHMARKS.md is made with 1024)
#        bench/run.sh --memory-only [SIZE_MB]   ivault alone, every step's time and peak RSS
#                                               (default 8192: the 8 GiB run)
# Env:   BENCH_DIR  work directory, wiped at start   (default /tmp/ivault-bench)
#        BENCH_DOC  where the Markdown report goes   (default <repo>/docs/BENCHMARKS.md)
#
# Every tool sees the same two database states: all full backups run first, then one
# "day of business" changes the live database, then all incrementals, then all restores.
# ivault and restic also run against an S3 server on 127.0.0.1 (s3s-fs, the tests' server,
# built as `cargo build --release --example s3_server`), each through its own S3 client.
set -euo pipefail

SIZE_MB="${1:-1024}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="${BENCH_DIR:-/tmp/ivault-bench}"
DOC="${BENCH_DOC:-$REPO_ROOT/docs/BENCHMARKS.md}"
IVAULT="$REPO_ROOT/target/release/ivault"
S3_SERVER="$REPO_ROOT/target/release/examples/s3_server"
RESULTS="$W/results.txt"   # "key value" lines, read by bench/report.py
DB="$W/db.sqlite"          # the live database every tool backs up

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }
record() { printf '%s %s\n' "$1" "$2" >> "$RESULTS"; }
bytes_of() { du -sb "$1" | cut -f1; }

# --- setup -------------------------------------------------------------------------------

install_peers() {
  local missing=()
  command -v restic  >/dev/null || missing+=(restic)
  command -v borg    >/dev/null || missing+=(borgbackup)
  command -v age     >/dev/null || missing+=(age)
  command -v zstd    >/dev/null || missing+=(zstd)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  [[ -x /usr/bin/time ]]        || missing+=(time)   # GNU time, for wall time and peak RSS
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  local sudo=""; ((EUID == 0)) || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_ivault() {
  log "cargo build --release (ivault and the S3 server)"
  (cd "$REPO_ROOT" && cargo build --release && cargo build --release --example s3_server)
  [[ -x "$IVAULT" ]] || die "no binary at $IVAULT"
  [[ -x "$S3_SERVER" ]] || die "no S3 server at $S3_SERVER"
}

fresh_workdir() {
  # Guard the rm -rf: the directory comes from the environment.
  [[ "$W" == /* && "$W" != "/" && "$W" != "$REPO_ROOT" ]] || die "BENCH_DIR must be an absolute path, not / or the repo"
  rm -rf "$W"
  mkdir -p "$W"/{times,logs,ivault,diy,restic,borg,s3}
  : > "$RESULTS"
}

machine_facts() {
  local cpu
  cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  {
    echo "cores: $(nproc)"
    echo "cpu: $cpu"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "ivault: $("$IVAULT" --version | cut -d' ' -f2) (git $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown))"
    echo "sqlite3: $(sqlite3 --version | cut -d' ' -f1)"
    echo "zstd: $(zstd --version | grep -o 'v[0-9.]*' | head -n1)"
    echo "age: $(age --version)"
    echo "restic: $(restic version | cut -d' ' -f2-)"
    echo "borg: $(borg --version | cut -d' ' -f2)"
    echo "kernel: $(uname -r)"
  } > "$W/machine.txt"
  cat "$W/machine.txt"
}

# --- measuring -----------------------------------------------------------------------------

# timed KEY CMD...: run CMD under GNU time; record KEY_s (wall seconds) and KEY_rss (peak
# RSS KiB of the largest process in it). stdout/stderr go to logs/KEY.out and logs/KEY.err.
# Pipelines are passed as `bash -o pipefail -c '...'` so every stage is inside the timing.
timed() {
  local key="$1"; shift
  local tf="$W/times/$key"
  # What earlier steps wrote is flushed first, so no step waits on another's writeback (a
  # restore fsyncs its file, and would otherwise pay for the gigabytes written before it).
  sync
  if ! /usr/bin/time -f '%e %M' -o "$tf" "$@" > "$W/logs/$key.out" 2> "$W/logs/$key.err"; then
    tail -n 20 "$W/logs/$key.err" >&2
    die "$key failed: $*"
  fi
  local secs rss
  read -r secs rss < <(tail -n 1 "$tf")
  record "${key}_s" "$secs"
  record "${key}_rss" "$rss"
  printf '%-16s %8s s %8s KiB\n' "$key" "$secs" "$rss" >&2
}

# Staging command shared by DIY, restic and borg: a consistent copy of the live database
# (a live file cannot be compressed or deduplicated directly without risking a torn copy).
stage_cmd() { printf 'rm -f staged.sqlite && sqlite3 %q ".backup staged.sqlite"' "$DB"; }

# --- database ------------------------------------------------------------------------------

make_database() {
  log "generating ${SIZE_MB} MiB database"
  "$IVAULT" demo generate --out "$DB" --size-mb "$SIZE_MB" --seed 1 --journal wal >&2
  record db_bytes "$(stat -c %s "$DB")"
  # The floor of a full backup: zstd -3 of the file on every core (size and time).
  timed zstd3 bash -o pipefail -c "zstd -3 -T0 -q -c $(printf %q "$DB") > $(printf %q "$W/db.zst")"
  record zstd3_bytes "$(stat -c %s "$W/db.zst")"
  rm -f "$W/db.zst"
}

day_of_business() {
  log "day of business"
  "$IVAULT" demo business --db "$DB" --seed 2 >&2
  record db2_bytes "$(stat -c %s "$DB")"
}

invoice_count() { sqlite3 -readonly "$1" 'SELECT count(*) FROM invoices'; }

# --- ivault ------------------------------------------------------------------------------

IV=("$IVAULT" --state-dir "$W/ivault/state")

ivault_setup() {
  RECIPIENT="$("${IV[@]}" key generate --out "$W/key.txt" 2>/dev/null)"
  "${IV[@]}" init "$W/ivault/repo" --recipient "$RECIPIENT" >/dev/null
}

ivault_full() {
  timed ivault_full "${IV[@]}" backup "$DB" --to "$W/ivault/repo" --full --json
  record ivault_full_bytes "$(bytes_of "$W/ivault/repo")"
}

ivault_incr() {
  local before; before="$(bytes_of "$W/ivault/repo")"
  timed ivault_incr "${IV[@]}" backup "$DB" --to "$W/ivault/repo" --json
  record ivault_incr_bytes "$(( $(bytes_of "$W/ivault/repo") - before ))"
}

ivault_restore() {
  # Without integrity_check (the SHA-256 of every byte is still verified): shows the cost of
  # the check separately, since no peer runs one.
  timed ivault_restore_fast "${IV[@]}" restore latest --repo "$W/ivault/repo" --identity "$W/key.txt" \
    --to "$W/ivault/restored-fast.sqlite" --skip-integrity-check
  rm -f "$W/ivault/restored-fast.sqlite"
  local out="$W/ivault/restored.sqlite"
  timed ivault_restore "${IV[@]}" restore latest --repo "$W/ivault/repo" --identity "$W/key.txt" --to "$out"
  # ivault restores the live page image, whose bytes differ from a .backup copy, so
  # compare content instead of a hash.
  [[ "$(sqlite3 "$out" 'PRAGMA integrity_check')" == ok ]] || die "ivault restore: integrity_check"
  [[ "$(invoice_count "$out")" == "$(invoice_count "$DB")" ]] || die "ivault restore: invoice count differs"
  rm -f "$out"
  # The default relies on the quick_check the backup ran on the same image; this runs it again.
  timed ivault_restore_quick "${IV[@]}" restore latest --repo "$W/ivault/repo" --identity "$W/key.txt" \
    --to "$out" --integrity-check quick
  rm -f "$out"
  timed ivault_check "${IV[@]}" check --repo "$W/ivault/repo" --identity "$W/key.txt" --read-data --json
}

# --- drills ----------------------------------------------------------------------------------

# A drill checks invoices per month against the facts a backup recorded, so the source needs its
# business description: one more incremental through a policy that has it (timed on its own:
# the cost of measuring the facts), then a default restore and a full drill of that snapshot,
# one after the other.
ivault_drill() {
  local policy="$W/ivault/policy.toml"
  cat > "$policy" <<POLICY
[[source]]
name = "bench"
path = "$DB"
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
children = [{ table = "invoice_items", fk = "invoice_id" }, { table = "tax_uploads", fk = "invoice_id" }]
status_column = "status"
series_column = "invoice_code"
number_column = "invoice_no"
[[target]]
name = "local"
url = "$W/ivault/repo"
[encryption]
identity_file = "$W/key.txt"
POLICY
  timed ivault_facts_incr "${IV[@]}" backup bench --policy "$policy" --json
  local out="$W/ivault/restored-drill.sqlite"
  timed ivault_drill_restore "${IV[@]}" restore latest --repo "$W/ivault/repo" --identity "$W/key.txt" --to "$out"
  rm -f "$out"
  timed ivault_drill "${IV[@]}" drill bench --policy "$policy" --json
  grep -q '"verdict": "passed"' "$W/logs/ivault_drill.out" || die "ivault drill did not pass"
}

# --- S3 on loopback ------------------------------------------------------------------------

export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true
S3_ROOT="$W/s3/root"

start_s3() {
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  mkdir -p "$S3_ROOT/bench"   # each directory under the root is a bucket
  "$S3_SERVER" "$S3_ROOT" "$port" 2> "$W/logs/s3_server.log" &
  S3_PID=$!
  trap 'kill $S3_PID 2>/dev/null || true' EXIT
  S3_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "the S3 server did not start: $(tail -n 5 "$W/logs/s3_server.log")"
}

IVS3=()
ivault_s3_setup() {
  IVS3=("${IV[@]}" --endpoint "$S3_ENDPOINT")
  "${IVS3[@]}" init s3://bench/ivault --recipient "$RECIPIENT" >/dev/null
}

ivault_s3_full() {
  timed ivault_s3_full "${IVS3[@]}" backup "$DB" --to s3://bench/ivault --full --json
  record ivault_s3_full_bytes "$(bytes_of "$S3_ROOT/bench/ivault")"
}

ivault_s3_incr() {
  local before; before="$(bytes_of "$S3_ROOT/bench/ivault")"
  timed ivault_s3_incr "${IVS3[@]}" backup "$DB" --to s3://bench/ivault --json
  record ivault_s3_incr_bytes "$(( $(bytes_of "$S3_ROOT/bench/ivault") - before ))"
}

ivault_s3_restore() {
  local out="$W/ivault/restored-s3.sqlite"
  timed ivault_s3_restore "${IVS3[@]}" restore latest --repo s3://bench/ivault --identity "$W/key.txt" \
    --to "$out" --skip-integrity-check
  [[ "$(invoice_count "$out")" == "$(invoice_count "$DB")" ]] || die "ivault S3 restore: invoice count differs"
  rm -f "$out"
}

# restic through its own S3 client (minio-go), same server, same staging as its local runs:
# `restic_s3 STEP` runs one of the restic steps below against the repository on the server.
restic_s3() {
  ( export RESTIC_REPOSITORY="s3:$S3_ENDPOINT/bench/restic" RESTIC_CACHE_DIR="$W/restic/cache-s3" \
      RV=_s3 RSTORE="$S3_ROOT/bench/restic"
    "$@" )
}

# --- DIY: sqlite3 .backup | zstd -3 -T0 | age ------------------------------------------------

diy_run() {  # diy_run KEY OUTFILE: stage, compress and encrypt one full copy
  (cd "$W/diy" && timed "$1" bash -o pipefail -c \
    "$(stage_cmd) && zstd -3 -T0 -q -c staged.sqlite | age -r $RECIPIENT > $2")
  sha256sum < "$W/diy/staged.sqlite" | cut -d' ' -f1 > "$W/diy/staged.sha256"
}

diy_full() {
  diy_run diy_full full.zst.age
  record diy_full_bytes "$(bytes_of "$W/diy/full.zst.age")"
}

diy_incr() {  # no incremental exists: a second full copy is what the user would keep
  diy_run diy_incr full2.zst.age
  record diy_incr_bytes "$(bytes_of "$W/diy/full2.zst.age")"
}

diy_restore() {
  (cd "$W/diy" && timed diy_restore bash -o pipefail -c \
    "age -d -i $(printf %q "$W/key.txt") full2.zst.age | zstd -d -q -o restored.sqlite")
  same_sha diy "$W/diy/restored.sqlite" "$W/diy/staged.sha256"
  rm -f "$W/diy/restored.sqlite"
}

same_sha() {  # same_sha TOOL FILE SHAFILE: a restore must give back the staged bytes exactly
  [[ -f "$2" ]] || die "$1 restore: $2 missing"
  [[ "$(sha256sum < "$2" | cut -d' ' -f1)" == "$(cat "$3")" ]] || die "$1 restore: SHA-256 differs from the staged copy"
}

# --- restic ------------------------------------------------------------------------------

export RESTIC_REPOSITORY="$W/restic/repo" RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$W/restic/cache"

# The steps work on the repository in RESTIC_REPOSITORY; RV suffixes their result keys and
# files ("" locally, "_s3" under restic_s3) and RSTORE is where the repository's bytes are.
RV=""
RSTORE="$W/restic/repo"

restic_init() {
  restic init > "$W/logs/restic${RV}_init.log" 2>&1 \
    || die "restic init${RV}: $(tail -n 5 "$W/logs/restic${RV}_init.log")"
}

restic_setup() {
  restic_init
  # Record the repository format restic chose by default (v1 has no compression).
  record restic_repo_version "$(restic cat config | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
}

restic_run() {  # restic_run STEP: stage, then back up the staged copy (same path each time)
  (cd "$W/restic" && timed "restic${RV}_$1" bash -o pipefail -c "$(stage_cmd) && restic backup --host bench staged.sqlite")
  sha256sum < "$W/restic/staged.sqlite" | cut -d' ' -f1 > "$W/restic/staged${RV}.sha256"
}

restic_full() {
  restic_run full
  record "restic${RV}_full_bytes" "$(bytes_of "$RSTORE")"
}

restic_incr() {
  local before; before="$(bytes_of "$RSTORE")"
  restic_run incr
  record "restic${RV}_incr_bytes" "$(( $(bytes_of "$RSTORE") - before ))"
}

restic_restore() {
  local target="$W/restic/restored${RV}"
  timed "restic${RV}_restore" restic restore latest --target "$target"
  # restic re-creates the absolute path of the backed-up file under the target.
  same_sha "restic${RV}" "$(find "$target" -name staged.sqlite -type f | head -n1)" "$W/restic/staged${RV}.sha256"
  rm -rf "$target"
}

# --- borg --------------------------------------------------------------------------------

export BORG_REPO="$W/borg/repo" BORG_PASSPHRASE=bench BORG_BASE_DIR="$W/borg/base" \
  BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes

borg_setup() {
  borg init -e repokey > "$W/logs/borg_init.log" 2>&1 || die "borg init: $(tail -n 5 "$W/logs/borg_init.log")"
}

borg_run() {  # borg_run KEY ARCHIVE
  (cd "$W/borg" && timed "$1" bash -o pipefail -c \
    "$(stage_cmd) && borg create --compression zstd,3 ::$2 staged.sqlite")
  sha256sum < "$W/borg/staged.sqlite" | cut -d' ' -f1 > "$W/borg/staged.sha256"
}

borg_full() {
  borg_run borg_full full
  record borg_full_bytes "$(bytes_of "$W/borg/repo")"
}

borg_incr() {
  local before; before="$(bytes_of "$W/borg/repo")"
  borg_run borg_incr incr
  record borg_incr_bytes "$(( $(bytes_of "$W/borg/repo") - before ))"
}

borg_restore() {
  mkdir -p "$W/borg/restored"
  (cd "$W/borg/restored" && timed borg_restore borg extract ::incr)
  same_sha borg "$W/borg/restored/staged.sqlite" "$W/borg/staged.sha256"
  rm -rf "$W/borg/restored"
}

# --- warm-up -----------------------------------------------------------------------------

# The first full copy of a freshly generated database runs slower, whichever tool goes first
# (page cache and writeback settle). One untimed full backup per tool, into scratch
# repositories, keeps that cost out of every tool's figures.
warm_up() {
  log "warm-up (untimed, thrown away)"
  local s="$W/warmup"; mkdir -p "$s"
  "$IVAULT" --state-dir "$s/state" init "$s/ivault" --recipient "$RECIPIENT" >/dev/null
  "$IVAULT" --state-dir "$s/state" backup "$DB" --to "$s/ivault" >/dev/null
  (cd "$s" && bash -o pipefail -c "$(stage_cmd) && zstd -3 -T0 -q -c staged.sqlite | age -r $RECIPIENT > /dev/null")
  RESTIC_REPOSITORY="$s/restic" restic init >/dev/null 2>&1
  (cd "$s" && RESTIC_REPOSITORY="$s/restic" restic backup --host bench staged.sqlite >/dev/null 2>&1)
  BORG_REPO="$s/borg" borg init -e repokey >/dev/null 2>&1
  (cd "$s" && BORG_REPO="$s/borg" borg create --compression zstd,3 ::warm staged.sqlite >/dev/null 2>&1)
  rm -rf "$s"
}

# --- main --------------------------------------------------------------------------------

main() {
  install_peers
  build_ivault
  fresh_workdir
  log "machine"
  machine_facts
  record size_mb "$SIZE_MB"
  make_database

  start_s3
  ivault_setup; restic_setup; borg_setup; ivault_s3_setup; restic_s3 restic_init
  warm_up

  log "full backups"
  ivault_full; ivault_s3_full; diy_full; restic_full; restic_s3 restic_full; borg_full
  day_of_business
  log "incremental backups"
  ivault_incr; ivault_s3_incr; diy_incr; restic_incr; restic_s3 restic_incr; borg_incr
  # Restores vary most from run to run on a shared machine: every tool restores twice, and
  # the report takes the faster time (and the larger peak RSS) of each.
  for round in 1 2; do
    log "restores, round $round"
    ivault_restore; ivault_s3_restore; diy_restore; restic_restore; restic_s3 restic_restore; borg_restore
  done
  log "drills"
  ivault_drill

  write_report
}

# The generated part of the document ends at MARKER; what follows it (sections other
# benchmarks record) is kept.
MARKER='<!-- Generated by bench/run.sh down to here; the sections below are kept. -->'
write_report() {
  mkdir -p "$(dirname "$DOC")"
  local kept=""
  [[ -f "$DOC" ]] && kept="$(awk -v m="$MARKER" 'found { print } $0 == m { found = 1 }' "$DOC")"
  { python3 "$REPO_ROOT/bench/report.py" "$W"; echo "$MARKER"; printf '%s\n' "$kept"; } > "$DOC.new"
  mv "$DOC.new" "$DOC"
  log "report ($DOC)"
  python3 "$REPO_ROOT/bench/report.py" "$W"
}

# Memory and time of ivault alone on a database of SIZE_MB (8192 for the 8 GiB run): full
# backup, incremental after a day of business, restore, check --read-data and copy, each with
# its peak RSS. Prints a table; docs/BENCHMARKS.md is not touched.
memory_run() {
  build_ivault
  fresh_workdir
  make_database
  ivault_setup
  ivault_full
  day_of_business
  ivault_incr
  ivault_restore
  "${IV[@]}" init "$W/ivault/copy" --recipient "$RECIPIENT" >/dev/null
  timed ivault_copy "${IV[@]}" copy --from "$W/ivault/repo" --to "$W/ivault/copy" --identity "$W/key.txt" --json
  python3 - "$RESULTS" "$SIZE_MB" <<'PY'
import sys
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[1]) if l.strip())}
print(f"ivault alone on {sys.argv[2]} MiB ({r['db_bytes'] / 2**20:.0f} MiB generated)")
print("| step | s | peak RSS MiB |")
print("| --- | ---: | ---: |")
for k in ("zstd3", "ivault_full", "ivault_incr", "ivault_restore_fast", "ivault_restore", "ivault_check", "ivault_copy"):
    print(f"| {k} | {r[k + '_s']:.1f} | {r[k + '_rss'] / 1024:.0f} |")
PY
}

if [[ "${1:-}" == "--memory-only" ]]; then
  SIZE_MB="${2:-8192}"
  memory_run
else
  main
fi
