#!/usr/bin/env bash
# Time the README's two commands on a clean clone, and report the size of the environment.
# Usage: benchmarks/fresh_clone.sh [DEST]   (DEST defaults to a new temporary folder)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$(mktemp -d)/vgh-book}"
git clone -q "$src" "$dest"
cd "$dest"
t0=$(date +%s); make test >test.log 2>&1; t1=$(date +%s)
make book >book.log 2>&1; t2=$(date +%s)
printf '%-28s %10s\n' "step" "value"
printf '%-28s %9ss\n' "make test (incl. .venv)" "$((t1 - t0))"
printf '%-28s %9ss\n' "make book (after test)" "$((t2 - t1))"
printf '%-28s %10s\n' ".venv size" "$(du -sh .venv | cut -f1)"
printf '%-28s %10s\n' "tests passed" "$(grep -Eo '[0-9]+ passed' test.log | tail -1)"
printf '%-28s %10s\n' "book warnings" "$(grep -c ': WARNING' book.log || true)"
printf '%-28s %10s\n' "pages built" "$(find _build/html/book -name '*.html' | wc -l)"
echo "clone left at $dest"
