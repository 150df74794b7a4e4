#!/usr/bin/env bash
# The one way to build release products into .build: the Swift runtime and Foundation linked
# statically (one self-contained binary), every function in a section of its own so that the
# linker can put the functions a start and the hot paths run next to each other
# (scripts/ipquest.symbol-order, see docs/DEPLOY.md "The release binary"). Every bench and
# `make release` go through here, so the release build directory is never rebuilt back and
# forth between two configurations.
#
# The memory-saving link steps for ipquest live here, not in Package.swift (a plain
# `swift build -c release` links the ordinary way, on any glibc Linux), and each is used only
# when what it needs is there, with a note on standard error when it is left out:
#   - lld (the toolchain's ld.lld): the function order and no exported symbol table;
#   - packed relative relocations (DT_RELR): the binary then needs glibc >= 2.36 where it
#     runs, so they are used only when this machine's glibc is that new, and never with
#     PORTABLE=1 (for a binary that must start on older systems, e.g. Ubuntu 22.04's 2.35);
#   - libstdc++ from its static archive (scripts/link/libstdc++.so, a linker script).
# After the link, the order file is checked against the binary: when fewer than 95 % of its
# names exist the build fails (record it again with scripts/record-symbol-order.sh).
#
#   [PORTABLE=1] scripts/build-release.sh [PRODUCT=ipquest] [SWIFT BUILD OPTIONS…]   (e.g. --scratch-path DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
product=${1:-ipquest}
shift $(( $# > 0 ? 1 : 0 ))
swift=${SWIFT:-swift}
order=scripts/ipquest.symbol-order
link=()     # options for the linker itself (lld)
linker=""   # the linker, when it is lld
ordered=0
note() { echo "build-release: $*" >&2; }
if [ "$product" = ipquest ] && [ "$(uname -s)" = Linux ]; then
  toolchain_bin=$(dirname "$(command -v "$swift")")
  linker=$( [ -x "$toolchain_bin/ld.lld" ] && echo "$toolchain_bin/ld.lld" || command -v ld.lld || true)
  if [ -n "$linker" ]; then
    link+=(--no-export-dynamic "--symbol-ordering-file=$PWD/$order" --no-warn-symbol-ordering)
    ordered=1
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
    if [ "${PORTABLE:-0}" = 1 ]; then
      note "PORTABLE=1: relocations not packed (the binary starts on glibc older than 2.36)"
    elif [ -n "$glibc" ] && printf '%s\n2.36\n' "$glibc" | sort -V -C -r 2>/dev/null; then
      link+=(-z pack-relative-relocs)
    else
      note "glibc ${glibc:-unknown} is older than 2.36: relocations not packed"
    fi
  else
    note "ld.lld not found: the default linker, without the function order (more resident memory, same behaviour)"
  fi
  archive=$(g++ -print-file-name=libstdc++.a 2>/dev/null || true)
  if [ "$archive" != libstdc++.a ] && [ -f "$archive" ]; then
    link+=("-L$PWD/scripts/link")
  else
    note "no static libstdc++ (libstdc++-dev): linking the shared one"
  fi
fi
# The linker and its options go in a toolset file: they reach the link only, so changing them
# never recompiles anything (-Xswiftc -use-ld=lld would be on every compile's command line).
toolset=()
if [ -n "$linker" ] || [ ${#link[@]} -gt 0 ]; then
  mkdir -p .build
  file=.build/release-link-toolset.json
  {
    printf '{"schemaVersion": "1.0", "linker": {'
    [ -n "$linker" ] && printf '"path": "%s", ' "$linker"
    printf '"extraCLIOptions": ['
    sep=""
    for option in ${link[@]+"${link[@]}"}; do printf '%s"%s"' "$sep" "$option"; sep=", "; done
    printf ']}}\n'
  } > "$file"
  toolset=(--toolset "$PWD/$file")
fi
# scripts/with-build-info.sh bakes the git commit into the binary (`ipquest --version`).
scripts/with-build-info.sh "$swift" build -c release --static-swift-stdlib \
    -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
    ${toolset[@]+"${toolset[@]}"} --product "$product" "$@"
if [ "$ordered" = 1 ]; then
  binary=$("$swift" build -c release --show-bin-path "$@")/$product
  total=$(sort -u "$order" | wc -l)
  present=$(comm -12 <(sort -u "$order") <(nm --defined-only "$binary" | awk '{print $NF}' | sort -u) | wc -l)
  if [ $(( present * 100 )) -lt $(( total * 95 )) ]; then
    note "$order is stale: $present of its $total names are in $binary (under 95 %); run scripts/record-symbol-order.sh"
    exit 1
  fi
fi
