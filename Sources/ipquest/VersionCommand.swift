import ArgumentParser
import CIPQuestBuildInfo

/// What this binary is: the release number and the git commit it was built from.
enum IPQuestVersion {
    /// Bumped by hand at a release.
    static let number = "0.1.0"
    /// Baked in by scripts/with-build-info.sh (make run/test/release/install); "unknown" for a plain `swift build`.
    static let commit = String(cString: ipquest_build_commit())
    /// `ipquest --version` and `ipquest version` print this line.
    static let line = "ipquest \(number) (commit \(commit))"
}

/// `ipquest version`: the same line as `ipquest --version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the version and the git commit this binary was built from."
    )

    func run() {
        print(IPQuestVersion.line)
    }
}
