// The commit is baked in at build time without a committed generated file:
// scripts/with-build-info.sh writes .build/ipquest-build-info.h (one #define), runs the build,
// and removes the header again. The compiler records the header as a dependency of this file,
// so the next build without it (a plain `swift build`) recompiles this file and says "unknown"
// instead of keeping a stale commit. Swift cannot take a string from -D, hence this C file.
#include "CIPQuestBuildInfo.h"

#if defined(__has_include)
#if __has_include("../../.build/ipquest-build-info.h")
#include "../../.build/ipquest-build-info.h"
#endif
#endif

#ifndef IPQUEST_GIT_COMMIT
#define IPQUEST_GIT_COMMIT "unknown"
#endif

const char *ipquest_build_commit(void) { return IPQUEST_GIT_COMMIT; }
