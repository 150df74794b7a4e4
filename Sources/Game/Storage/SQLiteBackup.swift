import Foundation
import GRDB
import CSystemInfo
import GameRules

/// Online backup and restore of the SQLite database (`ipquest backup`, `ipquest restore`), and
/// the words for a database file that turns out to be damaged.
///
/// The backup is SQLite's online backup API run in one step inside one read transaction of the
/// source: in WAL mode a reader never blocks the server's writer, and the copy is the database as
/// of the moment that transaction began, so every claim acknowledged before the backup started is
/// in it (a 2xx means committed) and nothing half-written is. The copy goes to a temporary file
/// beside the output, is checked with `PRAGMA integrity_check`, synced, and renamed into place.
public enum SQLiteBackup {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public struct Summary: Sendable {
        /// Size of the written file.
        public let bytes: Int64
        /// Pages copied.
        public let pages: Int
    }

    static func configuration(readonly: Bool) -> Configuration {
        var configuration = Configuration()
        configuration.label = "ipquest-backup"
        configuration.readonly = readonly
        // A WAL checkpoint of the running server may hold a lock for a moment.
        configuration.busyMode = .timeout(10)
        return configuration
    }

    /// Copies the database at `source` (possibly in use by `ipquest serve`) to `output`.
    /// Refuses an existing `output` unless `overwrite`.
    public static func backup(database source: String, to output: String, overwrite: Bool = false) throws -> Summary {
        guard FileManager.default.fileExists(atPath: source) else { throw Failure("no database file at \(source)") }
        if !overwrite, FileManager.default.fileExists(atPath: output) {
            throw Failure("\(output) exists; choose another name or pass --force")
        }
        if sameFile(source, output) { throw Failure("the output is the database itself") }
        let partial = output + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        removeDatabaseFiles(partial)
        defer { removeDatabaseFiles(partial) }
        let pages: Int
        do {
            // Read-write open: a read-only connection cannot join a WAL database whose -shm it may
            // not create. Nothing is written to the source.
            let from = try DatabaseQueue(path: source, configuration: configuration(readonly: false))
            let to = try DatabaseQueue(path: partial, configuration: configuration(readonly: false))
            var copied = 0
            try from.backup(to: to) { progress in copied = progress.totalPageCount }
            pages = copied
            try to.writeWithoutTransaction { db in
                // A single file, no -wal beside it: the copy is complete on its own.
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
            }
            try check(to, name: output)
            try to.close()
            try from.close()
        }
        try fsync(path: partial)
        if overwrite { try? FileManager.default.removeItem(atPath: output) }
        guard rename(partial, output) == 0 else {
            throw Failure("cannot move the copy to \(output): \(String(cString: strerror(errno)))")
        }
        try? fsync(path: URL(fileURLWithPath: output).deletingLastPathComponent().path)
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.int64Value ?? 0
        return Summary(bytes: size, pages: pages)
    }

    /// Replaces the database at `target` with the backup at `backup`, through SQLite (the
    /// target's -wal and -shm are rewritten with it, never left behind to be replayed onto the
    /// restored file). The server must be stopped: refuses while another process has `target` open.
    public static func restore(backup: String, to target: String) throws -> Summary {
        guard FileManager.default.fileExists(atPath: backup) else { throw Failure("no backup file at \(backup)") }
        if sameFile(backup, target) { throw Failure("the backup is the database itself") }
        if let pid = processHoldingOpen(target) {
            throw Failure("\(target) is open in process \(pid) (a running ipquest serve?); stop it before restoring")
        }
        let from = try DatabaseQueue(path: backup, configuration: configuration(readonly: true))
        try check(from, name: backup)
        let to = try DatabaseQueue(path: target, configuration: configuration(readonly: false))
        var pages = 0
        try from.backup(to: to) { progress in pages = progress.totalPageCount }
        try check(to, name: target)
        try to.close()
        try from.close()
        let size = (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? NSNumber)?.int64Value ?? 0
        return Summary(bytes: size, pages: pages)
    }

    static func check(_ db: DatabaseQueue, name: String) throws {
        let result = try db.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        guard result == ["ok"] else {
            throw Failure("\(name) fails SQLite's integrity check: \(result.prefix(3).joined(separator: "; "))")
        }
    }

    static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = ipq_file_info(), sb = ipq_file_info()
        guard ipq_file_info_of(a, &sa) == 0, ipq_file_info_of(b, &sb) == 0 else { return false }
        return sa.device == sb.device && sa.inode == sb.inode
    }

    static func fsync(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure("cannot open \(path) to sync it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard Foundation.fsync(fd) == 0 else { throw Failure("cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    /// The id of another process that has the file open (Linux: /proc/PID/fd), if any.
    static func processHoldingOpen(_ path: String) -> Int32? {
        #if os(Linux)
        var target = ipq_file_info()
        guard ipq_file_info_of(path, &target) == 0 else { return nil }
        let me = ProcessInfo.processInfo.processIdentifier
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in pids {
            guard let n = Int32(pid), n != me, let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                var s = ipq_file_info()
                if ipq_file_info_of("/proc/\(pid)/fd/\(fd)", &s) == 0, s.device == target.device, s.inode == target.inode { return n }
            }
        }
        #endif
        return nil
    }

    /// For an error met opening or loading the database at `path`: when SQLite says the file is
    /// damaged (SQLITE_CORRUPT, SQLITE_NOTADB), several lines that say which file, what it means and
    /// how to recover; nil for any other error.
    public static func corruptionAdvice(for error: any Error, path: String) -> String? {
        guard let error = error as? DatabaseError,
              error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB else { return nil }
        let recovered = path.hasSuffix(".sqlite") ? String(path.dropLast(7)) + ".recovered.sqlite" : path + ".recovered"
        return """
            ipquest: the SQLite database \(path) is damaged: \(error.message ?? "\(error)") (SQLite error \(error.resultCode.rawValue)).
            The file, or its write-ahead log \(path)-wal, no longer holds a valid SQLite database: a disk or
            file-system fault, a copy taken while it was being written, or a write by another program.
            Nothing was changed and the server did not start. To recover, with the server stopped:
              - restore the last backup (made by `ipquest backup`):
                  ipquest restore --database \(path) BACKUP_FILE
              - or salvage what can still be read into a new file, check it, and use that one:
                  sqlite3 \(path) .recover | sqlite3 \(recovered)
                  sqlite3 \(recovered) 'PRAGMA integrity_check'
                  ipquest serve --database \(recovered)
              (keep the damaged file and its -wal until the game runs again).
            """
    }
}
