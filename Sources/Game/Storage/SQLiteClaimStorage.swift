import Foundation
import GRDB
import Synchronization
import GRDBSQLite
import IPAddress
public import GameRules

/// Claims in an SQLite file (WAL), the embedded default.
///
/// Random-key upserts into `claims(ip PRIMARY KEY)` run at only 15–30k rows/s here, because a
/// batch of random addresses dirties a B-tree page per row. So the hot path appends to
/// `claim_journal`, whose keys are sequential (hundreds of thousands of rows/s), and a
/// compaction step folds the journal into `claims` in small chunks between batches. Loading
/// reads `claims` and then replays the journal in order, so the two together are the truth.
///
/// Journal rows carry sequence numbers that only grow (assigned here, not by SQLite, whose
/// rowids restart when the table empties). A board checkpoint taken at position P is resumed
/// by replaying the journal rows after P, so the fold never goes past the last durable
/// checkpoint (`allowFold(through:)`); `meta` records how far it went (`folded_through`) and
/// a `generation` that a bulk import bumps, so a stale checkpoint is detected, never trusted.
public final class SQLiteClaimStorage: ClaimStorage {
    public enum Durability: String, Sendable, CaseIterable {
        /// fsync on every commit: survives power loss.
        case full
        /// WAL without fsync per commit: survives a process crash (kill -9), not power loss.
        case normal
    }

    public let path: String
    let pool: DatabasePool
    /// The next journal sequence number, and how far the fold may go (checkpoints).
    private let sequence: Sequence

    final class Sequence: Sendable {
        let state: Mutex<(next: Int64, foldLimit: Int64)>
        init(next: Int64) { state = Mutex((next, Int64.max)) }
        func withLock<T>(_ body: (inout (next: Int64, foldLimit: Int64)) -> T) -> T { state.withLock { body(&$0) } }
    }

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
        let next = try pool.read { db -> Int64 in
            let journal = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM claim_journal") ?? 0
            let folded = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'folded_through'") ?? 0
            return max(journal, folded) + 1
        }
        sequence = Sequence(next: next)
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
        migrator.registerMigration("v3-meta") { db in
            // folded_through: every journal row up to it may be in `claims` instead; generation:
            // bumped by bulk writes (import) that a board checkpoint cannot know about.
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO meta (key, value) VALUES ('folded_through', (SELECT coalesce(max(seq), 0) FROM claim_journal));
                INSERT INTO meta (key, value) VALUES ('generation', 1);
                """)
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
        _ = try await appendReturningPosition(claims)
    }

    /// Appends in one transaction; returns the sequence number of the batch's last row.
    public func appendReturningPosition(_ claims: [Claim]) async throws -> Int64? {
        guard !claims.isEmpty else { return nil }
        let sequence = self.sequence
        return try await Self.inCachedTransaction(pool) { db in
            // The writer is serial (the pool's writer queue), so numbers are taken in commit order;
            // a failed transaction gives its numbers up (gaps are harmless).
            let first = sequence.withLock { s -> Int64 in
                defer { s.next += Int64(claims.count) }
                return s.next
            }
            try Self.insert(claims, firstSeq: first,
                            with: db.cachedStatement(sql: "INSERT INTO claim_journal (seq, \(Self.columns)) VALUES (?, ?, ?, ?, ?, ?, ?)"), in: db)
            return first + Int64(claims.count) - 1
        }
    }

    /// The fold may move journal rows up to `position` into `claims`: a board checkpoint at
    /// `position` is durable. Until the first call the fold is unbounded (no checkpoints).
    public func allowFold(through position: Int64) {
        sequence.withLock { $0.foldLimit = position }
    }

    public var storagePosition: Int64 { sequence.withLock { $0.next - 1 } }

    /// The bulk-write generation (`meta.generation`).
    public func generation() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'generation'") ?? 0 }
    }

    /// The claims committed after `position`, in commit order; nil when the journal no longer
    /// holds all of them (folded past `position`) or a bulk write changed the table since
    /// (`generation` differs): then only a full load is right.
    public func claims(after position: Int64, generation expected: Int64) async throws -> [Claim]? {
        try await pool.read { db -> [Claim]? in
            let folded = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'folded_through'") ?? 0
            let generation = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'generation'") ?? 0
            guard generation == expected, folded <= position else { return nil }
            var out: [Claim] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT \(Self.columns) FROM claim_journal WHERE seq > ? ORDER BY seq", arguments: [position])
            while let row = try rows.next() {
                if let claim = Self.claim(from: row) { out.append(claim) }
            }
            return out
        }
    }

    /// Runs `statement` (whose parameters are the six `columns`) once per claim. Rows are bound
    /// with SQLite's C API: GRDB's StatementArguments boxes every value of every row, which
    /// showed in the claim path's profile (bench/claims.sh).
    static func insert(_ claims: [Claim], firstSeq: Int64? = nil, with statement: Statement, in db: Database) throws {
        let handle = statement.sqliteStatement
        for (i, claim) in claims.enumerated() {
            if let firstSeq {
                sqlite3_bind_int64(handle, 1, firstSeq + Int64(i))
                bind(claim, to: handle, offset: 1)
            } else {
                bind(claim, to: handle)
            }
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

    /// Binds the six `columns` of `claim` (SQLite copies the text), from parameter `offset + 1` on.
    static func bind(_ claim: Claim, to handle: SQLiteStatement, offset: Int32 = 0) {
        let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
        func text(_ index: Int32, _ value: String?) {
            guard var value else { sqlite3_bind_null(handle, offset + index); return }
            _ = value.withUTF8 { sqlite3_bind_text(handle, offset + index, $0.baseAddress, Int32($0.count), transient) }
        }
        sqlite3_bind_int64(handle, offset + 1, Int64(claim.address.value))
        text(2, claim.name.value)
        sqlite3_bind_int64(handle, offset + 3, claim.claimedAt)
        text(4, claim.origin.country)
        if let asn = claim.origin.asn { sqlite3_bind_int64(handle, offset + 5, Int64(asn)) } else { sqlite3_bind_null(handle, offset + 5) }
        text(6, claim.origin.provider)
    }

    public var hasUpkeep: Bool { true }

    /// Folds up to `budget` of the oldest journal rows into `claims`.
    public func maintain(budget: Int) async throws -> Int {
        let limit = sequence.withLock { $0.foldLimit }
        return try await Self.inCachedTransaction(pool) { db in
            guard let first = try Int64.fetchOne(db.cachedStatement(sql: "SELECT min(seq) FROM claim_journal")), first <= limit else { return 0 }
            let last = min(first + Int64(budget) - 1, limit)
            try db.cachedStatement(sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'folded_through'").execute(arguments: [last])
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
            try Self.foldAllAndBumpGeneration(db)
            try Self.insert(claims, with: db.cachedStatement(sql: """
                INSERT INTO claims (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (ip) DO UPDATE SET \(Self.upsertSet)
                """), in: db)
            return claims.count
        }
    }

    /// Before a bulk write: folds the whole journal and bumps the generation, so any board
    /// checkpoint taken before is known to be stale.
    static func foldAllAndBumpGeneration(_ db: Database) throws {
        try db.execute(sql: """
            UPDATE meta SET value = max(value, (SELECT coalesce(max(seq), 0) FROM claim_journal)) WHERE key = 'folded_through';
            INSERT INTO claims (\(Self.columns))
            SELECT \(Self.columns) FROM claim_journal WHERE true ORDER BY seq
            ON CONFLICT (ip) DO UPDATE SET \(Self.upsertSet);
            DELETE FROM claim_journal;
            UPDATE meta SET value = value + 1 WHERE key = 'generation';
            """)
    }
}
