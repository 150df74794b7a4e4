public import Testing

/// What a test needs or costs, so a run can pick (`swift test --filter`, or Xcode's tag
/// filters): `make test` runs them all.
extension Tag {
    /// Needs a real PostgreSQL server (`scripts/with-postgres.sh` provides one).
    @Tag public static var postgres: Self
    /// Compares with Debian's libloc database and `location` tool (installed by `make test`).
    @Tag public static var referenceTools: Self
    /// Runs processes: the `ipquest` binary, curl, openssl.
    @Tag public static var processes: Self
    /// Takes seconds, not milliseconds (fuzzing, 200k-claim boards, timed windows).
    @Tag public static var slow: Self
}
