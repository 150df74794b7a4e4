import Foundation
import GRDB
import GRDBSQLite
public import IPAddress

/// Claims in an SQLite file (WAL), the embedded default.
///
/// Random-key upserts into `claims(ip PRIMARY KEY)` run at only 15–30k rows/s here, because a
/// batch of random addresses dirties a B-tree page per row. So the hot path appends to
/// `claim_journal`, whose keys are sequential (hundreds of thousands of rows/s), and a
/// compaction step folds the journal into `claims` in small chunks between batches. Loading
/// reads `claims` and then replays the journal in order, so the two together are the truth.
public final class SQLiteClaimStorage: ClaimStorage {
    public enum Durability: String, Sendable, CaseIterable {
        /// fsync on every commit: survives power loss.
        case full
        /// WAL without fsync per commit: survives a process crash (kill -9), not power loss.
        case normal
    }

    public let path: String
    let pool: DatabasePool

    public init(path: String, durability: Durability = .full) throws {
        self.path = path
        var configuration = Configuration()
        configuration.label = "ipquest"
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    /// Versioned schema changes, applied in one transaction each on open.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-claims") { db in
            // ip is the IPv4 address as an unsigned 32-bit integer; its block is ip >> 24.
            try db.execute(sql: """
                CREATE TABLE claims (
                    ip INTEGER PRIMARY KEY CHECK (ip BETWEEN 0 AND 4294967295),
                    name TEXT NOT NULL,
                    claimed_at INTEGER NOT NULL
                );
                CREATE TABLE claim_journal (
                    seq INTEGER PRIMARY KEY,
                    ip INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    claimed_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-claim-origin") { db in
            // Where the address was when claimed: country (ISO code), AS number, cloud provider.
            for table in ["claims", "claim_journal"] {
                try db.execute(sql: """
                    ALTER TABLE \(table) ADD COLUMN country TEXT;
                    ALTER TABLE \(table) ADD COLUMN asn INTEGER;
                    ALTER TABLE \(table) ADD COLUMN provider TEXT;
                    """)
            }
        }
        return migrator
    }

    static let columns = "ip, name, claimed_at, country, asn, provider"
    static let upsertSet = "name = excluded.name, claimed_at = excluded.claimed_at, country = excluded.country, asn = excluded.asn, provider = excluded.provider"

    static func claim(from row: Row) -> Claim? {
        let ip: Int64 = row[0]
        guard let address = UInt32(exactly: ip) else { return nil }
        let asn: Int64? = row[4]
        return Claim(
            address: IPv4Address(address), name: PlayerName(trusted: row[1]), claimedAt: row[2],
            origin: ClaimOrigin(country: row[3], asn: asn.flatMap { UInt32(exactly: $0) }, provider: row[5]))
    }

    public func loadAll() async throws -> [Claim] {
        try await pool.read { db in
            var latest: [UInt32: Claim] = [:]
            latest.reserveCapacity(try Int.fetchOne(db, sql: "SELECT count(*) FROM claims") ?? 0)
            for sql in ["SELECT \(Self.columns) FROM claims", "SELECT \(Self.columns) FROM claim_journal ORDER BY seq"] {
                let rows = try Row.fetchCursor(db, sql: sql)
                while let row = try rows.next() {
                    guard let claim = Self.claim(from: row) else { continue }
                    latest[claim.address.value] = claim
                }
            }
            return Array(latest.values)
        }
    }

    public func append(_ claims: [Claim]) async throws {
        guard !claims.isEmpty else { return }
        try await Self.inCachedTransaction(pool) { db in
            try Self.insert(claims, with: db.cachedStatement(sql: "INSERT INTO claim_journal (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?)"), in: db)
        }
    }

    /// Runs `statement` (whose parameters are the six `columns`) once per claim. Rows are bound
    /// with SQLite's C API: GRDB's StatementArguments boxes every value of every row, which
    /// showed in the claim path's profile (bench/claims.sh).
    static func insert(_ claims: [Claim], with statement: Statement, in db: Database) throws {
        let handle = statement.sqliteStatement
        for claim in claims {
            bind(claim, to: handle)
            let code = sqlite3_step(handle)
            sqlite3_reset(handle)
            guard code == SQLITE_DONE else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: statement.sql)
            }
        }
    }

    /// `pool.write`, with BEGIN and COMMIT as cached statements: GRDB's own transaction
    /// compiles both (through its authorizer) for every batch.
    static func inCachedTransaction<T: Sendable>(_ pool: DatabasePool, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            do {
                let result = try body(db)
                try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                return result
            } catch {
                if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK TRANSACTION") }
                throw error
            }
        }
    }

    /// Binds the six `columns` of `claim` (SQLite copies the text).
    static func bind(_ claim: Claim, to handle: SQLiteStatement) {
        let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
        func text(_ index: Int32, _ value: String?) {
            guard var value else { sqlite3_bind_null(handle, index); return }
            value.withUTF8 { sqlite3_bind_text(handle, index, $0.baseAddress, Int32($0.count), transient) }
        }
        sqlite3_bind_int64(handle, 1, Int64(claim.address.value))
        text(2, claim.name.value)
        sqlite3_bind_int64(handle, 3, claim.claimedAt)
        text(4, claim.origin.country)
        if let asn = claim.origin.asn { sqlite3_bind_int64(handle, 5, Int64(asn)) } else { sqlite3_bind_null(handle, 5) }
        text(6, claim.origin.provider)
    }

    public var hasUpkeep: Bool { true }

    /// Folds up to `budget` of the oldest journal rows into `claims`.
    public func maintain(budget: Int) async throws -> Int {
        try await Self.inCachedTransaction(pool) { db in
            guard let first = try Int64.fetchOne(db.cachedStatement(sql: "SELECT min(seq) FROM claim_journal")) else { return 0 }
            let last = first + Int64(budget) - 1
            try db.cachedStatement(sql: """
                INSERT INTO claims (\(Self.columns))
                SELECT \(Self.columns) FROM claim_journal WHERE seq BETWEEN ? AND ? ORDER BY seq
                ON CONFLICT (ip) DO UPDATE SET \(Self.upsertSet)
                """).execute(arguments: [first, last])
            try db.cachedStatement(sql: "DELETE FROM claim_journal WHERE seq BETWEEN ? AND ?").execute(arguments: [first, last])
            return db.changesCount
        }
    }

    public func count() async throws -> Int {
        // Addresses in either table: the journal may hold addresses not yet folded into claims.
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT ip FROM claims UNION SELECT ip FROM claim_journal)") ?? 0
        }
    }

    public func journalLength() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM claim_journal") ?? 0 }
    }

    /// Writes claims straight into `claims` (restore from a backup), last row wins per address.
    /// Returns the number of rows written.
    public func importClaims(_ claims: [Claim]) async throws -> Int {
        try await pool.write { db in
            // Fold any journal first so imported rows are not overridden by older journal rows.
            try db.execute(sql: """
                INSERT INTO claims (\(Self.columns))
                SELECT \(Self.columns) FROM claim_journal WHERE true ORDER BY seq
                ON CONFLICT (ip) DO UPDATE SET \(Self.upsertSet);
                DELETE FROM claim_journal;
                """)
            try Self.insert(claims, with: db.cachedStatement(sql: """
                INSERT INTO claims (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (ip) DO UPDATE SET \(Self.upsertSet)
                """), in: db)
            return claims.count
        }
    }
}
