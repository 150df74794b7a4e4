import ArgumentParser
import Foundation
import Game
import IPAddress
import GameRules

/// `ipquest claims export|import`: backup and restore of the claims table.
struct ClaimsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claims",
        abstract: "Export or import claims as TSV/CSV (ip, name, claimed_at, country, asn, provider).",
        subcommands: [Export.self, Import.self]
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case tsv, csv
        var separator: Character { self == .tsv ? "\t" : "," }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write every claim, in address order.",
            discussion: "Streams from one snapshot of the database (it may run while the server runs); progress on standard error every million rows."
        )
        @Option(help: "SQLite database file.") var database = "./ipquest.sqlite"
        @Option(help: "tsv or csv.") var format: Format = .tsv
        @Option(name: .shortAndLong, help: "Output file (default: standard output), written to a temporary file and renamed when complete.") var output: String?
        @Option(help: .hidden) var progressEvery = 1_000_000

        func run() async throws {
            guard FileManager.default.fileExists(atPath: database) else {
                throw ValidationError("no database at \(database)")
            }
            let storage = try SQLiteClaimStorage(path: database)
            let separator = format.separator.asciiValue!
            let started = ContinuousClock.now
            let report: (Int) -> Void = { progress("exported \($0) claims…") }
            let count: Int
            if let output {
                let temporary = output + ".partial-\(getpid())"
                let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw ValidationError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
                do {
                    count = try storage.exportClaims(toFileDescriptor: fd, separator: separator, progressEvery: progressEvery, progress: report)
                    guard fsync(fd) == 0, close(fd) == 0, rename(temporary, output) == 0 else {
                        throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
                    }
                } catch {
                    close(fd)
                    unlink(temporary)
                    throw error
                }
            } else {
                count = try storage.exportClaims(toFileDescriptor: STDOUT_FILENO, separator: separator, progressEvery: progressEvery, progress: report)
            }
            progress("exported \(count) claims in \(seconds(since: started))")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read claims into the database (all or nothing; run while the server is stopped).",
            discussion: """
                Rows replace the current owner of their address. Any bad row aborts the import and nothing is written. \
                The input is streamed in one transaction: rows sorted by address (as `claims export` writes them) go fastest. \
                Progress on standard error every million rows.
                """
        )
        @Option(help: "SQLite database file (created if missing).") var database = "./ipquest.sqlite"
        @Option(help: "tsv or csv (default: from the file extension, else tsv).") var format: Format?
        @Argument(help: "Input file, or - for standard input.") var input: String
        @Option(help: .hidden) var progressEvery = 1_000_000

        func run() async throws {
            let fd: Int32
            if input == "-" {
                fd = STDIN_FILENO
            } else {
                fd = open(input, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw ValidationError("cannot read \(input)") }
            }
            defer { if fd != STDIN_FILENO { close(fd) } }
            var status = stat()
            let size = fstat(fd, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG ? Int(status.st_size) : 0
            let chosen = format ?? (input.hasSuffix(".csv") ? .csv : .tsv)
            let created = !FileManager.default.fileExists(atPath: database)
            let started = ContinuousClock.now
            let result: SQLiteClaimStorage.ImportReport
            do {
                let storage = try SQLiteClaimStorage(path: database)
                progress("importing into \(database)…")
                result = try storage.importClaims(fromFileDescriptor: fd, separator: chosen.separator.asciiValue!,
                                                progressEvery: progressEvery) { p in
                    let share = size > 0 ? " (\(min(100, p.bytes * 100 / size))% of the input)" : ""
                    progress("read \(p.rows) claims\(share)…")
                }
            }
            if result.errorCount > 0 {
                for e in result.errors { progress(e) }
                if result.errorCount > result.errors.count { progress("… and \(result.errorCount - result.errors.count) more") }
                progress("import aborted: \(result.errorCount) bad rows, nothing written")
                if created { // leave no empty database behind
                    for suffix in ["", "-wal", "-shm"] { unlink(database + suffix) }
                }
                throw ExitCode(2)
            }
            progress("imported \(result.rows) claims into \(database) in \(seconds(since: started))")
        }
    }
}

private func seconds(since start: ContinuousClock.Instant) -> String {
    let d = ContinuousClock.now - start
    let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    return String(format: "%.1f s", s)
}

func progress(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}
