#!/usr/bin/env bash
# Crash soak (docs/reliability.md): kills a CPU training run with SIGKILL at KILLS random
# moments (during start-up, training steps and checkpoint saves alike), resumes it with
# --resume auto each time, and checks that
#   - no resume ever passes over an unreadable checkpoint ("skipping checkpoint"),
#   - the run then completes, and its final weights equal an uninterrupted run's bit for bit
#     (every member of the two final model.pt archives has the same bytes; zip timestamps
#     aside).
# Usage: scripts/soak.sh [KILLS]   env: HERD (binary), SOAK_DIR (work dir), STEPS, SEED
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERD="${HERD:-$ROOT/build/herd}"
KILLS="${1:-${KILLS:-20}}"
STEPS="${STEPS:-3000}"  # long enough that every kill lands mid-run (a step takes ~6 ms)
RANDOM="${SEED:-12}"  # the kill moments are reproducible for one seed
W="${SOAK_DIR:-$(mktemp -d /tmp/herd-soak.XXXXXX)}"
mkdir -p "$W"
say() { echo "[soak] $*"; }
fail() { echo "[soak] FAIL: $*" >&2; exit 1; }

# A small dataset from Debian's fortunes (package fortunes), made once per work dir.
DATA="$W/data"
if [ ! -f "$DATA/manifest.yaml" ]; then
  F=/usr/share/games/fortunes
  "$HERD" tokenizer train --input $F/fortunes $F/literature --vocab-size 512 --model-type bpe \
    --doc-delimiter % --out "$W/tok" >"$W/prepare.log" 2>&1 || fail "tokenizer: $(tail -1 "$W/prepare.log")"
  "$HERD" prepare text --input $F/fortunes $F/literature --tokenizer "$W/tok.model" \
    --doc-delimiter % --out "$DATA" >>"$W/prepare.log" 2>&1 || fail "prepare: $(tail -1 "$W/prepare.log")"
fi
cat >"$W/soak.yaml" <<YAML
model: {d_model: 32, n_layer: 2, n_head: 4, max_seq_len: 32}
data: {dir: $DATA}
optimizer: {lr: 3.0e-3}
schedule: {warmup_steps: 3}
train: {steps: $STEPS, batch_size: 8, micro_batch_size: 4, device: cpu, eval_batches: 2,
        sample_tokens: 0, threads: 1}
checkpoint: {every: 2, keep_last: 2}
YAML

same_weights() {  # every member of two torch archives (zip) byte for byte
  python3 - "$1" "$2" <<'PY'
import sys, zipfile
a, b = (zipfile.ZipFile(p) for p in sys.argv[1:3])
strip = lambda n: n.split("/", 1)[-1]  # the archive's top folder is named after the file
ma = {strip(i.filename): a.read(i) for i in a.infolist()}
mb = {strip(i.filename): b.read(i) for i in b.infolist()}
diff = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
print(", ".join(diff) if diff else "")
sys.exit(1 if diff else 0)
PY
}

rm -rf "$W/straight" "$W/killed"
say "uninterrupted run of $STEPS steps"
"$HERD" train "$W/soak.yaml" --run-dir "$W/straight" >"$W/straight.log" 2>&1 || fail "straight run: $(tail -1 "$W/straight.log")"
start=$(date +%s)
in_save=0
for i in $(seq 1 "$KILLS"); do
  # 0.2 .. 3.0 s after the start: start-up takes about 1-2 s, a step a few ms, a save ~10 ms.
  ms=$((200 + RANDOM % 2800))
  delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  "$HERD" train "$W/soak.yaml" --run-dir "$W/killed" --resume auto >"$W/kill_$i.log" 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q "skipping checkpoint" "$W/kill_$i.log"; then
    fail "kill $i: a resume passed over an unreadable checkpoint: $(grep -m1 skipping "$W/kill_$i.log")"
  fi
  grep -q "herd: error" "$W/kill_$i.log" && fail "kill $i: $(grep -m1 'herd: error' "$W/kill_$i.log")"
  ls -d "$W/killed/checkpoints/.tmp-"* >/dev/null 2>&1 && in_save=$((in_save + 1))
  last=$(cat "$W/killed/checkpoints/latest" 2>/dev/null || echo none)
  say "kill $i after ${delay}s: latest $last"
done
"$HERD" train "$W/soak.yaml" --run-dir "$W/killed" --resume auto >"$W/final.log" 2>&1 || fail "final resume: $(tail -1 "$W/final.log")"
grep -q "skipping checkpoint" "$W/final.log" && fail "final resume skipped a checkpoint"
final=$(printf 'step_%08d' "$STEPS")
[ -f "$W/killed/checkpoints/$final/model.pt" ] || fail "no final checkpoint $final"
differ=$(same_weights "$W/straight/checkpoints/$final/model.pt" "$W/killed/checkpoints/$final/model.pt") ||
  fail "final weights differ from the uninterrupted run's in: $differ"
dups=$(grep -o '^{"step":[0-9]*,"loss"' "$W/killed/metrics.jsonl" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "metrics.jsonl repeats $dups steps"
say "PASS: $KILLS kills ($in_save left a save's temporary behind), $(($(date +%s) - start)) s;" \
  "final weights equal the uninterrupted run's bit for bit; metrics.jsonl has each step once"
