import Foundation
import GRDB
import GameRules

extension SQLiteClaimStorage {
    /// Migrations already in the file and those still pending; without `dryRun` the pending ones
    /// are applied (as opening the storage does). A missing file is not created on a dry run.
    public static func migrationStatus(path: String, dryRun: Bool) throws -> (applied: [String], pending: [String]) {
        let known = migrator.migrations
        guard FileManager.default.fileExists(atPath: path) else {
            if !dryRun { _ = try SQLiteClaimStorage(path: path) }
            return ([], known)
        }
        let queue = try DatabaseQueue(path: path)
        let applied = try queue.read { db in try migrator.appliedIdentifiers(db) }
        let pending = known.filter { !applied.contains($0) }
        if !dryRun, !pending.isEmpty { try migrator.migrate(queue) }
        return (known.filter { applied.contains($0) }, pending)
    }
}
