public import GameRules
/// Where claims live durably. The engine keeps the live state in memory; storage is written
/// before a claim is acknowledged and read back in full on start.
public protocol ClaimStorage: Sendable {
    /// Every stored claim, one per address (the latest).
    func loadAll() async throws -> [Claim]
    /// The same, oldest first, handed to `chunk` a few thousand at a time: a storage that can
    /// sort on its side streams them, so the caller never holds every row at once.
    func loadAllInTimeOrder(_ chunk: @escaping @Sendable ([Claim]) -> Void) async throws
    /// Durably records a batch of effective claims in one transaction, in order. When this
    /// returns, the claims survive a crash of the process.
    func append(_ claims: [Claim]) async throws
    /// Background upkeep between batches (for example folding a journal). Returns the
    /// number of rows handled; 0 when there was nothing to do.
    func maintain(budget: Int) async throws -> Int
    /// Whether `maintain` has work that costs a transaction (SQLite folds its journal), worth
    /// putting off until the queue stays empty (`GameEngine.Configuration.idleGrace`).
    var hasUpkeep: Bool { get }
    /// Number of stored addresses.
    func count() async throws -> Int
    /// Change feed for storages shared by several instances (defaults below: none).
    func changeCursor() async throws -> Int64?
    func changes(since cursor: Int64, limit: Int) async throws -> ClaimChanges
}

/// Storage failures reported to users as 503: the claim was not stored, or not known to be
/// (a batch that timed out may still commit; PostgresClaimStorage then brings it back to the board).
public struct StorageUnavailable: Error, CustomStringConvertible {
    public var underlying: any Error
    public var description: String { "storage unavailable: \(underlying)" }
}

/// Claims other writers committed, in commit order, and the cursor to ask from next time.
public struct ClaimChanges: Sendable, Equatable {
    public var claims: [Claim]
    public var cursor: Int64
    public init(claims: [Claim], cursor: Int64) {
        self.claims = claims
        self.cursor = cursor
    }
}

/// A change feed, for storages shared by several instances (PostgreSQL). An instance reads the
/// cursor before loading, then folds `changes(since:)` into its board, so it sees every claim
/// any instance commits. Single-writer storages (SQLite) keep the defaults: no feed.
extension ClaimStorage {
    public var hasUpkeep: Bool { false }
    /// `loadAll`, sorted here.
    public func loadAllInTimeOrder(_ chunk: @escaping @Sendable ([Claim]) -> Void) async throws {
        let claims = try await loadAll().sorted { $0.claimedAt < $1.claimedAt }
        for start in stride(from: 0, to: claims.count, by: 8_192) { chunk(Array(claims[start..<min(start + 8_192, claims.count)])) }
    }
    /// The position of the feed now, or nil when the storage has a single writer.
    public func changeCursor() async throws -> Int64? { nil }
    /// Up to `limit` claims committed after `cursor` (latest per address), oldest first.
    public func changes(since cursor: Int64, limit: Int) async throws -> ClaimChanges { ClaimChanges(claims: [], cursor: cursor) }
}

/// A storage whose commits carry increasing positions, so the board can be resumed from a
/// checkpoint taken at a position by replaying only what was committed after it (SQLite's
/// journal; PostgreSQL's `seq`, the change feed's cursor). The engine tells it how far its
/// durable checkpoints reach (`allowFold`), so it keeps the claims after that position where
/// `claims(after:generation:)` can find them.
///
/// How far the board reaches: with a single writer, the position of its last batch; with a
/// change feed (several writers), the feed's cursor after the board folded it, since another
/// instance's lower position may not be on the board when this instance's batch commits.
public protocol ResumableClaimStorage: ClaimStorage {
    /// `append`, returning the position of the batch's last claim (nil for an empty batch, and
    /// always for a storage with a change feed, whose board is positioned by the feed).
    func appendReturningPosition(_ claims: [Claim]) async throws -> Int64?
    /// The position of the last commit (as far as this process knows).
    var storagePosition: Int64 { get }
    /// Changes whenever claims are written around the positions (a bulk import).
    func generation() async throws -> Int64
    /// Claims committed after `position`, in commit order; nil when that cannot be told any
    /// more (the claims were compacted away, or the generation changed). They may include
    /// claims already on a board taken at `position` (a feed-positioned board holds this
    /// instance's later batches too); applied again, those change nothing.
    func claims(after position: Int64, generation: Int64) async throws -> [Claim]?
    /// A board checkpoint at `position` is durable: what precedes it may be compacted.
    func allowFold(through position: Int64)
}

extension SQLiteClaimStorage: ResumableClaimStorage {}
