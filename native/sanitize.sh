#!/usr/bin/env bash
# Build the native engine with AddressSanitizer + UBSan in a scratch copy of the tree and run
# the native tests against it (the test build of the hooks, tests/native_hooks.py, takes the same
# flags from the environment); then run a focused valgrind memcheck on the normal build.
# Usage: native/sanitize.sh [asan|valgrind|all]   (default: all). Exit status non-zero on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
py="${PYTHON:-python}"

if [ "$what" = asan ] || [ "$what" = all ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    git ls-files -z | xargs -0 -I{} cp --parents {} "$work"/
    sanitize() {  # $1: extra compiler flags, $2: label, then the test files
        local extra="$1" label="$2"
        shift 2
        (
            cd "$work"
            rm -f manverify/_native*.so
            export MANVERIFY_CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer $extra"
            export MANVERIFY_LDFLAGS="-fsanitize=address,undefined"
            "$py" -c "import sys; sys.path.insert(0, 'native'); import build; build.ffi.compile(tmpdir='.', verbose=False)" >/dev/null
            ls manverify/_native*.so >/dev/null
            preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
            loaded="$(LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 "$py" -c 'import manverify._native as m; print(m.__file__)')"
            case "$loaded" in "$work"/*) ;; *) echo "sanitizer build not picked up (loaded $loaded)"; exit 1;; esac
            nm -D "$loaded" | grep -q __asan_ || { echo "$loaded is not instrumented"; exit 1; }
            echo "== ASan+UBSan ($label): native tests against $loaded"
            LD_PRELOAD="$preload" PYTHONMALLOC=malloc \
            ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            MANVERIFY_BACKEND=native \
                "$py" -m pytest -q -p no:cacheprovider --import-mode=prepend "$@"
        )
    }
    # the build CI ships (mulx/adx field code and SHA extensions chosen at run time), then the
    # portable C everywhere (-DMV_NO_ASM: __int128 carries, no asm, no SHA extensions)
    sanitize "" "x86-64 paths" tests/test_es256.py tests/test_native_model.py tests/test_scan.py tests/test_verifier.py
    sanitize "-DMV_NO_ASM" "portable C" tests/test_es256.py tests/test_native_model.py tests/test_scan.py
fi

if [ "$what" = valgrind ] || [ "$what" = all ]; then
    echo "== valgrind memcheck: native engine"
    # The real interpreter, not a launcher script: valgrind does not follow exec by default.
    exe="$("$py" -c 'import sys; print(sys.executable)')"
    log="$(mktemp)"
    PYTHONMALLOC=malloc MANVERIFY_BACKEND=native valgrind --leak-check=no --track-origins=yes \
        --log-file="$log" "$exe" native/memcheck.py
    # The interpreter itself (not built for valgrind) reports a few uninitialised reads at import
    # time; only reports whose stack passes through the engine count.
    "$py" - "$log" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
blocks = [b for b in re.split(r"==\d+== \n", text) if re.search(r"==\d+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and destination)", b)]
ours = [b for b in blocks if re.search(r"_native|mv_native\.c|_impl\.h|mv_[a-z_0-9]+ \(", b)]
print(f"valgrind: {len(ours)} report(s) in the native engine, {len(blocks) - len(ours)} inside the interpreter (ignored)")
for b in ours:
    print(b)
sys.exit(1 if ours else 0)
PYEOF
    rm -f "$log"
fi
