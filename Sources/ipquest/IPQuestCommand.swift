import ArgumentParser

@main
struct IPQuestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipquest",
        abstract: "Capture-the-IP game server and IP toolkit.",
        subcommands: [
            // One line per tool; each lives in its own file in this folder.
            ServeCommand.self,
            MigrateCommand.self,
            ClaimsCommand.self,
            RangesCommand.self,
            LocationCommand.self,
            TunnelCommand.self,
        ]
    )
}
