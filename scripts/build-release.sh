#!/usr/bin/env bash
# The one way to build release products into .build: the Swift runtime and Foundation linked
# statically (one self-contained binary), every function in a section of its own so that the
# linker can put the functions a start and the hot paths run next to each other
# (scripts/ipquest.symbol-order, see docs/DEPLOY.md "The release binary"). Every bench and
# `make release` go through here, so the release build directory is never rebuilt back and
# forth between two configurations.
#
#   scripts/build-release.sh [PRODUCT=ipquest] [SWIFT BUILD OPTIONS…]   (e.g. --scratch-path DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
product=${1:-ipquest}
shift $(( $# > 0 ? 1 : 0 ))
# scripts/with-build-info.sh bakes the git commit into the binary (`ipquest --version`).
exec scripts/with-build-info.sh "${SWIFT:-swift}" build -c release --static-swift-stdlib \
    -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
    --product "$product" "$@"
