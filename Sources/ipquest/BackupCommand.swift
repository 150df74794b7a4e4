import ArgumentParser
import Foundation
import Game
import GameRules

/// `ipquest backup --database PATH OUT`: a consistent copy of the SQLite database, taken while
/// the game runs (SQLite's online backup; see `SQLiteBackup`).
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the live SQLite database to OUT without stopping the game (consistent as of the moment it starts).",
        discussion: """
            Every claim acknowledged (2xx) before the backup starts is in the copy. The copy is checked \
            (PRAGMA integrity_check) and written under a temporary name, then renamed to OUT. \
            Restore with `ipquest restore --database PATH OUT` while the server is stopped. \
            For PostgreSQL use pg_dump.
            """
    )

    @Option(help: "The SQLite database file of `ipquest serve` (default ./ipquest.sqlite).") var database = "./ipquest.sqlite"
    @Flag(help: "Replace OUT if it exists.") var force = false
    @Argument(help: "The file to write.") var out: String

    func run() throws {
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
            throw ValidationError("backup copies a SQLite database; for PostgreSQL use pg_dump")
        }
        let started = Date()
        do {
            let summary = try SQLiteBackup.backup(database: database, to: out, overwrite: force)
            let ms = Int(Date().timeIntervalSince(started) * 1000)
            print("backed up \(database) to \(out): \(summary.bytes) bytes, \(summary.pages) pages, \(ms) ms")
        } catch {
            FileHandle.standardError.write(Data(((SQLiteBackup.corruptionAdvice(for: error, path: database)
                ?? "ipquest backup: \(error)") + "\n").utf8))
            throw ExitCode(1)
        }
    }
}

/// `ipquest restore --database PATH BACKUP`: puts a backup in place of the database.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Replace the SQLite database with a backup made by `ipquest backup` (stop the server first).",
        discussion: """
            The backup is checked, then copied into PATH through SQLite, so an old PATH-wal is never \
            replayed onto it. Refuses while another process has PATH open.
            """
    )

    @Option(help: "The SQLite database file to replace (default ./ipquest.sqlite).") var database = "./ipquest.sqlite"
    @Argument(help: "The backup file.") var backup: String

    func run() throws {
        do {
            let summary = try SQLiteBackup.restore(backup: backup, to: database)
            print("restored \(backup) into \(database): \(summary.bytes) bytes, \(summary.pages) pages")
        } catch {
            FileHandle.standardError.write(Data(((SQLiteBackup.corruptionAdvice(for: error, path: backup)
                ?? "ipquest restore: \(error)") + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
