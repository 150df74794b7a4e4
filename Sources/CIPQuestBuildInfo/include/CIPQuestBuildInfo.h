#ifndef CIPQUEST_BUILD_INFO_H
#define CIPQUEST_BUILD_INFO_H

/// The git commit this binary was built from ("abc123…", "abc123…-dirty" when the work tree had
/// changes), or "unknown" for a build that did not go through scripts/with-build-info.sh
/// (a plain `swift build`). See BuildInfo.c.
const char *ipquest_build_commit(void);

#endif
