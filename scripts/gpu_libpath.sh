# Sourced by scripts/gpu_bundle.sh, the bundle's run.sh (copied there as libpath.sh) and its
# test: where a python's torch keeps its shared libraries, and which libraries belong to the
# operating system. One place, so the bundle is assembled against the same folders it later
# runs against.

# torch_libs PYTHON: imports torch and sets TORCH_VERSION ("2.11.0+cu130"), TORCH_ROOTS (torch's
# package folder and every nvidia/* package folder, space-separated) and TORCH_LIB_PATH (torch/lib
# then every nvidia/*/lib, colon-separated). On failure returns 1 with the reason in TORCH_ERROR.
torch_libs() {
  local py="$1" out err
  command -v "$py" >/dev/null 2>&1 || { TORCH_ERROR="$py: not found"; return 1; }
  err="$(mktemp)"
  out="$("$py" - 2>"$err" <<'EOF'
import glob, os, torch
roots = [os.path.dirname(torch.__file__)]
try:  # the CUDA wheels torch loads (cuBLAS, cuDNN, NCCL, ...) live in the nvidia namespace
    import nvidia
    for p in nvidia.__path__:
        roots += sorted(d for d in glob.glob(os.path.join(p, "*")) if os.path.isdir(d))
except ImportError:
    pass
libs = [os.path.join(r, "lib") for r in roots if os.path.isdir(os.path.join(r, "lib"))]
print("version", torch.__version__)
print("roots", " ".join(roots))
print("libs", ":".join(libs))
EOF
  )" || {
    TORCH_ERROR="$py: $(tail -n 1 "$err")"
    rm -f "$err"
    return 1
  }
  rm -f "$err"
  TORCH_VERSION="$(sed -n 's/^version //p' <<<"$out")"
  TORCH_ROOTS="$(sed -n 's/^roots //p' <<<"$out")"
  TORCH_LIB_PATH="$(sed -n 's/^libs //p' <<<"$out")"
}

# machine_lib NAME: true for what every machine that runs torch's wheel has and a bundle leaves
# to it: glibc's files (the loader, the vDSO), libstdc++ and libgcc_s.
machine_lib() {
  case "$1" in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | \
      libdl.so.* | librt.so.* | libutil.so.* | libresolv.so.* | libanl.so.* | libnss_* | \
      libstdc++.so.* | libgcc_s.so.*) return 0 ;;
  esac
  return 1
}

# in_torch PATH: true when PATH (resolved) lies under one of TORCH_ROOTS.
in_torch() {
  local real r
  real="$(realpath -m "$1")"
  for r in $TORCH_ROOTS; do
    case "$real" in "$(realpath -m "$r")"/*) return 0 ;; esac
  done
  return 1
}

# ldd_pairs FILE...: "NAME PATH" per library the loader resolves for FILE (PATH "not-found" when
# it cannot), under the caller's LD_LIBRARY_PATH; the vDSO, which has no file, is left out.
ldd_pairs() {
  ldd "$@" 2>/dev/null | awk '
    /=> not found/ { print $1, "not-found"; next }
    /=>/ && $3 ~ /^\// { print $1, $3; next }
    $1 ~ /^\// && $1 !~ /:$/ { n = split($1, p, "/"); print p[n], $1 }' | sort -u
}

# ldd_version_errors FILE...: the symbol versions the loader would not find (a glibc or
# libstdc++ older than the one the bundle was built against), one "version `X' not found
# (required by Y)" per line.
ldd_version_errors() {
  ldd "$@" 2>&1 | grep -o "version \`[^']*' not found (required by [^)]*)" | sort -u
}
