#!/usr/bin/env bash
# Runs every fuzz target of the Go module (each `func FuzzX(f *testing.F)`
# in a _test.go file), one after the other, for FUZZTIME each (default 2m).
# A target that finds a failing input makes go test write it to
# <package>/testdata/fuzz/FuzzX/<hash>: commit that file and it becomes part
# of the seed corpus, run by every plain `go test` from then on. Exits
# non-zero if any target failed, after running them all.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-2m}

targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' server sdk gen 2>/dev/null | sort)
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
failed=()
count=0
for file in $targets; do
	dir=./$(dirname "$file")
	for name in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$file"); do
		count=$((count + 1))
		echo "== $name ($dir, $FUZZTIME)"
		if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$dir"; then
			failed+=("$name ($dir)")
		fi
	done
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} of $count targets failed; their inputs are in testdata/fuzz/ of their package:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: $count targets, no failure"
