# shellcheck shell=bash
# Sourced by scripts/build.sh: makes sure everything the wasm build needs is present, then
# exports what worker-build must see. Idempotent; a second run with everything present takes
# well under a second.
#
# Two paths:
#  * an ordinary machine whose rustup has the wasm32-unknown-unknown target: use it as it is;
#  * a machine where rustup cannot add that target (no downloads but the package registries):
#    build with Debian's rustc-web, a private sysroot holding a std for wasm32 that we compile
#    once from Debian's rust-web-src, and LLVM's wasm-ld. Nothing under /usr is modified.
# Either way worker-build and wasm-bindgen-cli come from crates.io (pinned to Cargo.lock) and
# esbuild and wasm-opt from npm, so worker-build never tries to download them from GitHub.
#
# Everything lives outside the clone, in $R2D1_TOOLCHAIN_DIR (default ~/.cache/r2d1-toolchain),
# so that every clone on the machine shares it.

R2D1_TOOLCHAIN_DIR=${R2D1_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/r2d1-toolchain}
WASM_TARGET=wasm32-unknown-unknown

tc_say() { echo "toolchain: $*" >&2; }
tc_die() {
  echo "toolchain: error: $*" >&2
  exit 1
}

# The version Cargo.lock pins for crate $1.
tc_lock_version() {
  awk -v want="name = \"$1\"" '$0 == want { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

tc_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    tc_die "need root to run: $*"
  fi
}

# cargo install $crate@$version into the toolchain dir unless `$bin --version` already says it.
tc_cargo_tool() {
  local crate=$1 bin=$2 version=$3
  shift 3
  local path="$R2D1_TOOLCHAIN_DIR/tools/bin/$bin"
  if [ -x "$path" ] && "$path" --version 2>/dev/null | grep -qF "$version"; then
    return 0
  fi
  tc_say "installing $crate $version from crates.io (a few minutes, once per machine)"
  # Rustup's own rustc builds the tools, whatever the wasm path exports later.
  env -u RUSTC -u RUSTFLAGS cargo install "$crate" --version "$version" "$@" \
    --root "$R2D1_TOOLCHAIN_DIR/tools" --quiet ||
    tc_die "cargo install $crate $version failed (is crates.io reachable?)"
}

tc_has_rustup_wasm_target() {
  local libdir
  libdir=$(timeout 20 rustc --target "$WASM_TARGET" --print target-libdir 2>/dev/null) || return 1
  compgen -G "$libdir/libcore-*.rlib" >/dev/null
}

# The fallback: Debian's rustc with a private sysroot and a prebuilt wasm32 std.
tc_debian_wasm() {
  local need=()
  [ -x /usr/bin/rustc ] || need+=(rustc-web)
  [ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
  command -v wasm-ld-22 >/dev/null || need+=(lld-22)
  if [ ${#need[@]} -gt 0 ]; then
    tc_say "installing Debian packages: ${need[*]}"
    tc_as_root apt-get update -qq >/dev/null || tc_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive tc_as_root apt-get install -y -qq "${need[@]}" >/dev/null ||
      tc_die "apt-get install ${need[*]} failed"
  fi

  local info release commit host key
  info=$(/usr/bin/rustc -vV) || tc_die "/usr/bin/rustc does not run"
  release=$(sed -n 's/^release: //p' <<<"$info")
  commit=$(sed -n 's/^commit-hash: //p' <<<"$info")
  host=$(sed -n 's/^host: //p' <<<"$info")
  key="$release-${commit:0:9}"

  mkdir -p "$R2D1_TOOLCHAIN_DIR"
  # build-std fails on a sysroot path with `..` in it: keep it canonical.
  local base
  base=$(cd "$R2D1_TOOLCHAIN_DIR" && pwd -P)
  local sysroot="$base/sysroot-$key" bindir="$base/bin-$key"
  local wasmlib="$sysroot/lib/rustlib/$WASM_TARGET/lib"

  if [ ! -x "$bindir/rustc" ]; then
    mkdir -p "$sysroot/lib/rustlib" "$wasmlib" "$bindir"
    for part in "$host" src etc; do
      [ -e "/usr/lib/rustlib/$part" ] && ln -sfn "/usr/lib/rustlib/$part" "$sysroot/lib/rustlib/$part"
    done
    # worker-build checks the wasm32 target with the `rustc` first on PATH, so the wrapper is
    # both on PATH and cargo's RUSTC.
    printf '#!/bin/sh\nexec /usr/bin/rustc --sysroot="%s" "$@"\n' "$sysroot" >"$bindir/rustc.tmp"
    chmod +x "$bindir/rustc.tmp"
    mv "$bindir/rustc.tmp" "$bindir/rustc"
  fi

  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22

  if [ ! -f "$wasmlib/.complete" ]; then
    tc_say "building std for $WASM_TARGET from Debian's sources (about a minute, once per rustc)"
    local work="$base/std-build-$key"
    rm -rf "$work" "${wasmlib:?}"/*.rlib
    mkdir -p "$work/src"
    printf '[package]\nname = "r2d1-std-seed"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n[workspace]\n' >"$work/Cargo.toml"
    printf '#![no_std]\n' >"$work/src/lib.rs"
    (
      cd "$work" &&
        env -u CARGO_UNSTABLE_BUILD_STD RUSTC="$bindir/rustc" RUSTC_BOOTSTRAP=1 \
          RUSTFLAGS="-Cembed-bitcode=yes" CARGO_TARGET_DIR="$work/target" \
          cargo build --quiet --release --target "$WASM_TARGET" -Zbuild-std=std,panic_abort
    ) || tc_die "building std for $WASM_TARGET failed"
    find "$work/target/$WASM_TARGET/release/deps" -name '*.rlib' ! -name 'libr2d1_std_seed-*' \
      -exec cp {} "$wasmlib/" \;
    touch "$wasmlib/.complete"
    rm -rf "$work"
  fi

  export PATH="$bindir:$PATH"
  export RUSTC="$bindir/rustc"
}

r2d1_toolchain() {
  command -v cargo >/dev/null || tc_die "cargo not found: install Rust with rustup (https://rustup.rs)"
  [ -d node_modules/binaryen ] || tc_die "node_modules is missing: run npm install first"

  local wb_version bg_version
  wb_version=$(tc_lock_version worker)
  bg_version=$(tc_lock_version wasm-bindgen)
  [ -n "$wb_version" ] && [ -n "$bg_version" ] || tc_die "Cargo.lock does not pin worker and wasm-bindgen"

  tc_cargo_tool worker-build worker-build "$wb_version" --locked
  # wasm-bindgen-cli resolves only without --locked on these machines.
  tc_cargo_tool wasm-bindgen-cli wasm-bindgen "$bg_version"
  export PATH="$R2D1_TOOLCHAIN_DIR/tools/bin:$PATH"
  export WASM_BINDGEN_BIN="$R2D1_TOOLCHAIN_DIR/tools/bin/wasm-bindgen"

  local esbuild
  esbuild=$(compgen -G "node_modules/@esbuild/*/bin/esbuild" | head -n 1 || true)
  [ -n "$esbuild" ] || esbuild=node_modules/esbuild/bin/esbuild
  export ESBUILD_BIN="$PWD/$esbuild"
  export WASM_OPT_BIN="$PWD/node_modules/binaryen/bin/wasm-opt"

  if tc_has_rustup_wasm_target; then
    tc_say "using rustup's $WASM_TARGET target"
  else
    tc_debian_wasm
  fi
}
