import ArgumentParser

struct IPQuestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipquest",
        abstract: "Capture-the-IP game server and IP toolkit.",
        version: IPQuestVersion.line,
        subcommands: [
            // One line per tool; each lives in its own file in this folder.
            ServeCommand.self,
            MigrateCommand.self,
            ClaimsCommand.self,
            RangesCommand.self,
            LocationCommand.self,
            TunnelCommand.self,
            BackupCommand.self,
            RestoreCommand.self,
            VersionCommand.self,
        ]
    )
}

/// The process entry point. The long-running commands, `serve` and `tunnel`, are parsed on
/// their own first: the full parser builds the whole command tree, running every tool's
/// configuration (names, help text, option types) and paging in code that a server never runs
/// again (0.3–0.8 MB of resident memory). Whatever does not parse cleanly that way (help, a bad
/// flag, any other tool) goes through the full parser, which words usage and errors as always;
/// errors from a command's run are reported by the root command either way.
@main
enum Entry {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let servers: [String: any AsyncParsableCommand.Type] = ["serve": ServeCommand.self, "tunnel": TunnelCommand.self]
        if let name = arguments.first, let server = servers[name],
           var command = (try? server.parseAsRoot(Array(arguments.dropFirst()))) as? any AsyncParsableCommand {
            do { try await command.run() } catch { IPQuestCommand.exit(withError: error) }
            IPQuestCommand.exit()
        }
        await IPQuestCommand.main()
    }
}
