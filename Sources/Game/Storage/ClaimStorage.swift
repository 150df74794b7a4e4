/// Where claims live durably. The engine keeps the live state in memory; storage is written
/// before a claim is acknowledged and read back in full on start.
public protocol ClaimStorage: Sendable {
    /// Every stored claim, one per address (the latest).
    func loadAll() async throws -> [Claim]
    /// Durably records a batch of effective claims in one transaction, in order. When this
    /// returns, the claims survive a crash of the process.
    func append(_ claims: [Claim]) async throws
    /// Background upkeep between batches (for example folding a journal). Returns the
    /// number of rows handled; 0 when there was nothing to do.
    func maintain(budget: Int) async throws -> Int
    /// Number of stored addresses.
    func count() async throws -> Int
}

/// Storage failures reported to users as 503 (the claim was not stored).
public struct StorageUnavailable: Error, CustomStringConvertible {
    public var underlying: any Error
    public var description: String { "storage unavailable: \(underlying)" }
}
