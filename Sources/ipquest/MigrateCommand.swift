import ArgumentParser
import Foundation
import Game
import Logging
import GameRules

/// `ipquest migrate`: brings the database schema up to date (serve also does this on start).
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending schema migrations (SQLite file or postgres:// URL).",
        discussion: """
            PostgreSQL migrations run under an advisory lock, one transaction each, so concurrent \
            starts are safe and a failed migration leaves the schema as it was.
            """
    )

    @Option(help: "SQLite database file or postgres:// URL (default ./ipquest.sqlite).") var database = "./ipquest.sqlite"
    @Flag(name: .customLong("dry-run"), help: "Only list the migrations that would be applied.") var dryRun = false

    func run() async throws {
        var logger = Logger(label: "ipquest")
        logger.logLevel = .warning
        do {
            if PostgresSettings.isPostgresURL(database) {
                let settings = try PostgresSettings(url: database)
                let status = try await PostgresMigrations.migrate(settings: settings, dryRun: dryRun, logger: logger)
                let names = Dictionary(uniqueKeysWithValues: PostgresMigrations.all.map { ($0.version, $0.name) })
                report(applied: status.applied.map { "\($0)-\(names[$0] ?? "?")" }, pending: status.pending.map { "\($0)-\(names[$0] ?? "?")" })
            } else {
                let status = try SQLiteClaimStorage.migrationStatus(path: database, dryRun: dryRun)
                report(applied: status.applied, pending: status.pending)
            }
        } catch {
            FileHandle.standardError.write(Data("ipquest: migrate failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func report(applied: [String], pending: [String]) {
        print("applied before: \(applied.isEmpty ? "none" : applied.joined(separator: ", "))")
        if pending.isEmpty {
            print("up to date")
        } else {
            print("\(dryRun ? "would apply" : "applied"): \(pending.joined(separator: ", "))")
        }
    }
}
