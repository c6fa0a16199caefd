#!/usr/bin/env bash
# Compares two builds of ivault on the same data, run after each other in alternation, and
# prints each step's time and peak memory side by side with the ratio new/old: for checking
# that a change did not make anything slower (bench/run.sh compares ivault with other tools).
#
# Usage: bench/compare.sh OLD_REV [SIZE_MB] [ROUNDS]     (defaults: 512 MiB, 3 rounds)
# Env:   BENCH_DIR  work directory, wiped at start (default /tmp/ivault-compare)
#
# OLD_REV is built in a temporary git worktree with this checkout's target directory, so only
# the crate itself is rebuilt; the working tree's binary is rebuilt afterwards.
set -euo pipefail

OLD_REV="${1:?usage: bench/compare.sh OLD_REV [SIZE_MB] [ROUNDS]}"
SIZE_MB="${2:-512}"
ROUNDS="${3:-3}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="${BENCH_DIR:-/tmp/ivault-compare}"
[[ "$W" == /* && "$W" != "/" && "$W" != "$REPO_ROOT" ]] || { echo "BENCH_DIR must be an absolute path" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

rm -rf "$W"; mkdir -p "$W/bin"
(cd "$REPO_ROOT" && cargo build --release -q) && cp "$REPO_ROOT/target/release/ivault" "$W/bin/new"
WT="$W/old-src"
git -C "$REPO_ROOT" worktree add -q --detach "$WT" "$OLD_REV"
trap 'git -C "$REPO_ROOT" worktree remove --force "$WT" 2>/dev/null || true' EXIT
(cd "$WT" && CARGO_TARGET_DIR="$REPO_ROOT/target" cargo build --release -q) \
  && cp "$REPO_ROOT/target/release/ivault" "$W/bin/old"
(cd "$REPO_ROOT" && cargo build --release -q)

DB="$W/db.sqlite"
"$W/bin/new" demo generate --out "$DB" --size-mb "$SIZE_MB" --seed 1 --journal wal >/dev/null
"$W/bin/new" key generate --out "$W/key.txt" 2>/dev/null > "$W/recipient.txt"

# step NAME BIN ARGS...: appends "BIN NAME seconds peak_kib" to results
step() {
  local name="$1" bin="$2"; shift 2
  /usr/bin/time -f "%e %M" -o "$W/t" "$W/bin/$bin" "$@" >/dev/null
  echo "$bin $name $(cat "$W/t")" >> "$W/results"
}

: > "$W/results"
for round in $(seq "$ROUNDS"); do
  for bin in old new; do
    r="$W/run-$bin"; rm -rf "$r"; mkdir -p "$r"
    cp "$DB" "$r/db.sqlite"
    iv=(--state-dir "$r/state")
    "$W/bin/$bin" "${iv[@]}" init "$r/repo" --recipient "$(cat "$W/recipient.txt")" >/dev/null
    step full "$bin" "${iv[@]}" backup "$r/db.sqlite" --to "$r/repo"
    "$W/bin/new" demo business --db "$r/db.sqlite" --seed 2 >/dev/null
    step incremental "$bin" "${iv[@]}" backup "$r/db.sqlite" --to "$r/repo"
    step restore "$bin" "${iv[@]}" restore latest --repo "$r/repo" --identity "$W/key.txt" --to "$r/out.sqlite"
    rm -f "$r/out.sqlite"
    step restore_sha_only "$bin" "${iv[@]}" restore latest --repo "$r/repo" --identity "$W/key.txt" --to "$r/out.sqlite" --skip-integrity-check
    step check_read_data "$bin" "${iv[@]}" check --repo "$r/repo" --identity "$W/key.txt" --read-data
  done
  echo "round $round done" >&2
done

python3 - "$W/results" "$SIZE_MB" "$OLD_REV" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, name, secs, kib = line.split()
    rows[(b, name)].append((float(secs), int(kib)))
steps = []
for (b, name) in rows:
    if name not in steps:
        steps.append(name)
print(f"ivault {sys.argv[3]} (old) against the working tree (new), {sys.argv[2]} MiB, median of {len(rows[('old', steps[0])])} rounds")
print(f"| step | old s | new s | new/old | old peak MiB | new peak MiB |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: |")
for name in steps:
    o = statistics.median(t for t, _ in rows[("old", name)])
    n = statistics.median(t for t, _ in rows[("new", name)])
    om = max(m for _, m in rows[("old", name)]) / 1024
    nm = max(m for _, m in rows[("new", name)]) / 1024
    print(f"| {name} | {o:.2f} | {n:.2f} | {n/o:.2f} | {om:.0f} | {nm:.0f} |")
EOF
