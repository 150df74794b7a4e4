import Foundation
import IPAddress
public import Logging
import Metrics
import NIOPosix
import PostgresNIO
import Synchronization
public import GameRules

/// Claims in PostgreSQL, shared by several `ipquest serve` instances.
///
/// A batch is one transaction: take the next range of `seq` values from `ipquest_state` (its row
/// lock orders batches across instances, so commits become visible in `seq` order), then one
/// statement upserts every claim from arrays (`unnest`) and adjusts the per-player and
/// per-(block, player) aggregates by the difference between the old and new owners.
///
/// `changes(since:)` is the feed other instances follow: rows with `seq` above a cursor, in order.
/// One instance at a time holds a session advisory lock and does the background upkeep.
/// When the database is unreachable, a batch gives up after `timeout_ms` and later batches fail at
/// once for a short, growing backoff, so claims answer 503 quickly instead of piling up.
///
/// A batch that gave up may still commit: the wait is abandoned, not the statement (nor a COMMIT
/// already sent before the connection broke). Its rows carry the writer id it was sent with, and
/// the batch ends that id: later batches get a new one, and the feed, which only skips rows of
/// the current id, brings the batch back if it committed, so the board ends up as stored.
public final class PostgresClaimStorage: ResumableClaimStorage {
    public let settings: PostgresSettings
    let client: PostgresClient
    let logger: Logger
    private let runTask: Task<Void, Never>
    private let leaderTask: Mutex<Task<Void, Never>?> = Mutex(nil)
    private let health = Mutex(Health())
    private let leader = Flag()
    private let lastUpkeep = Mutex<ContinuousClock.Instant?>(nil)
    private let lastSeen = Mutex<Int64>(0)
    /// Marks this instance's rows, so the change feed does not send them back to it. Replaced
    /// after a batch whose outcome is unknown (see `append`).
    let writerID = Atomic<Int64>(Int64.random(in: 1...Int64.max))

    struct Health {
        var failures = 0
        var retryAt: ContinuousClock.Instant?
    }

    /// Connects, applies pending migrations (under the migration lock) and starts competing for
    /// leadership.
    public init(settings: PostgresSettings, logger: Logger, migrate: Bool = true, leadership: Bool = true) async throws {
        self.settings = settings
        self.logger = logger
        // The pool gets an event loop of its own: on the HTTP loops a batch's answer waited
        // behind every ready client socket, which stretched each commit under load.
        let client = PostgresClient(configuration: settings.clientConfiguration(), eventLoopGroup: Self.eventLoop, backgroundLogger: logger)
        self.client = client
        runTask = Task.detached { await client.run() }
        do {
            if migrate {
                try await withTimeout(.milliseconds(Int64(max(settings.timeoutMilliseconds, 10_000)))) {
                    try await client.withConnection { connection in
                        _ = try await PostgresMigrations.migrate(on: connection, logger: logger)
                    }
                }
            }
        } catch {
            runTask.cancel()
            throw error
        }
        if leadership { startLeadership() }
    }

    deinit { shutdown() }

    /// One thread for every pool in the process (it lives as long as the process).
    static let eventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Stops the pool and gives up leadership (the session lock goes with its connection).
    public func shutdown() {
        leaderTask.withLock { $0?.cancel() }
        runTask.cancel()
    }

    public var isLeader: Bool { leader.value.load(ordering: .acquiring) }

    // MARK: ClaimStorage

    public func loadAll() async throws -> [Claim] {
        // Reading every claim takes as long as the table is big (seconds per million rows): no
        // client-side deadline, and no statement_timeout for this one statement.
        try await guarded(bounded: false) {
            try await self.client.withTransaction(logger: self.logger) { tx in
                try await tx.query("SET LOCAL statement_timeout = 0", logger: self.logger)
                var claims: [Claim] = []
                let rows = try await tx.query("SELECT ip, name, claimed_at, country, asn, provider FROM claims", logger: self.logger)
                for try await (ip, name, at, country, asn, provider) in rows.decode((Int64, String, Int64, String?, Int64?, String?).self) {
                    if let claim = Self.claim(ip: ip, name: name, at: at, country: country, asn: asn, provider: provider) { claims.append(claim) }
                }
                return claims
            }
        }
    }

    /// Every row, oldest first (sorted by the server), streamed in chunks: an instance that
    /// starts without a checkpoint no longer holds the whole table as claims at once.
    public func loadAllInTimeOrder(_ chunk: @escaping @Sendable ([Claim]) -> Void) async throws {
        try await guarded(bounded: false) {
            try await self.client.withTransaction(logger: self.logger) { tx in
                try await tx.query("SET LOCAL statement_timeout = 0", logger: self.logger)
                try await tx.query("SET LOCAL work_mem = '64MB'", logger: self.logger)
                var claims: [Claim] = []
                claims.reserveCapacity(8_192)
                let rows = try await tx.query("SELECT ip, name, claimed_at, country, asn, provider FROM claims ORDER BY claimed_at, seq",
                                              logger: self.logger)
                for try await (ip, name, at, country, asn, provider) in rows.decode((Int64, String, Int64, String?, Int64?, String?).self) {
                    if let claim = Self.claim(ip: ip, name: name, at: at, country: country, asn: asn, provider: provider) { claims.append(claim) }
                    if claims.count == 8_192 {
                        chunk(claims)
                        claims.removeAll(keepingCapacity: true)
                    }
                }
                if !claims.isEmpty { chunk(claims) }
            }
        }
    }

    public func append(_ claims: [Claim]) async throws {
        guard !claims.isEmpty else { return }
        // Last claim per address wins (one row may be upserted once per statement).
        var position: [UInt32: Int] = [:]
        var ips: [Int64] = [], names: [String] = [], times: [Int64] = []
        // PostgresNIO binds arrays of non-optionals: "" and 0 stand for NULL (NULLIF below).
        var countries: [String] = [], asns: [Int64] = [], providers: [String] = []
        ips.reserveCapacity(claims.count); names.reserveCapacity(claims.count); times.reserveCapacity(claims.count)
        for claim in claims {
            let asn = Int64(claim.origin.asn ?? 0)
            let country = claim.origin.country ?? "", provider = claim.origin.provider ?? ""
            if let i = position[claim.address.value] {
                names[i] = claim.name.value
                times[i] = claim.claimedAt
                countries[i] = country; asns[i] = asn; providers[i] = provider
            } else {
                position[claim.address.value] = ips.count
                ips.append(Int64(claim.address.value)); names.append(claim.name.value); times.append(claim.claimedAt)
                countries.append(country); asns.append(asn); providers.append(provider)
            }
        }
        let (ipArray, nameArray, timeArray) = (ips, names, times)
        let (countryArray, asnArray, providerArray) = (countries, asns, providers)
        // One call, so one round trip, and its own transaction (see migration 3): the function
        // takes the seq range under ipquest_state's row lock first, then upserts with a fresh
        // snapshot, so it sees every batch committed before it and batches commit in seq order.
        let writer = writerID.load(ordering: .acquiring)
        do {
            try await guarded {
                let rows = try await self.client.query("""
                    SELECT ipquest_append(\(ipArray)::bigint[], \(nameArray)::text[], \(timeArray)::bigint[],
                                          \(countryArray)::text[], \(asnArray)::bigint[], \(providerArray)::text[], \(writer)::bigint)
                    """, logger: self.logger)
                // The query answers as soon as the row description arrives, before the function
                // has run: only the end of its rows says the statement completed. Without this
                // wait a batch was acknowledged before it was stored, and a database stopped at
                // that moment lost acknowledged claims (PostgresServeProcessTests).
                for try await _ in rows {}
            }
        } catch let error as StorageUnavailable where !(error.underlying is DatabaseDown) {
            // Sent, so it may yet commit (or have committed) although its claims are answered
            // 503 and stay off the board. From now on this instance writes under a new id, so
            // the feed no longer takes this batch's rows for the instance's own: if they are
            // stored, they come back like another instance's claims and the board follows.
            // (Rows of the old id already on the board may come back too; they change nothing.)
            // Runs before `append` returns, so before the writer next reads the feed.
            _ = writerID.compareExchange(expected: writer, desired: Int64.random(in: 1...Int64.max), ordering: .acquiringAndReleasing)
            throw error
        }
    }

    /// Leader-only upkeep, at most every few seconds: drops aggregate rows that reached zero.
    public func maintain(budget: Int) async throws -> Int {
        guard isLeader else { return 0 }
        let now = ContinuousClock.now
        let due = lastUpkeep.withLock { last -> Bool in
            if let last, now - last < .seconds(5) { return false }
            last = now
            return true
        }
        guard due else { return 0 }
        try await guarded {
            try await self.client.query("DELETE FROM block_scores WHERE addresses = 0", logger: self.logger)
            try await self.client.query("DELETE FROM player_scores WHERE addresses = 0", logger: self.logger)
        }
        return 0 // nothing that needs an immediate next step
    }

    public func count() async throws -> Int {
        try await guarded {
            for try await n in try await self.client.query("SELECT count(*) FROM claims", logger: self.logger).decode(Int64.self) {
                return Int(n)
            }
            return 0
        }
    }

    public func changeCursor() async throws -> Int64? {
        try await guarded {
            for try await n in try await self.client.query("SELECT last_seq FROM ipquest_state WHERE id = 1", logger: self.logger).decode(Int64.self) {
                self.lastSeen.withLock { $0 = max($0, n) }
                return n
            }
            return 0
        }
    }

    /// Other instances' rows after `cursor` (and this instance's under an id it has given up,
    /// see `append`). One statement (one snapshot) also reads the commit counter, so when fewer
    /// than `limit` rows come back the cursor can jump past this instance's own rows.
    public func changes(since cursor: Int64, limit: Int) async throws -> ClaimChanges {
        try await guarded {
            var claims: [Claim] = []
            var lastRow = cursor
            var visible = cursor
            let rows = try await self.client.query("""
                (SELECT -1::bigint AS ip, ''::text AS name, 0::bigint AS claimed_at, NULL::text AS country, NULL::bigint AS asn,
                        NULL::text AS provider, last_seq AS seq FROM ipquest_state WHERE id = 1)
                UNION ALL
                (SELECT ip, name, claimed_at, country, asn, provider, seq FROM claims
                 WHERE seq > \(cursor) AND writer <> \(self.writerID.load(ordering: .acquiring)) ORDER BY seq LIMIT \(Int64(limit)))
                """, logger: self.logger)
            for try await (ip, name, at, country, asn, provider, seq) in rows.decode((Int64, String, Int64, String?, Int64?, String?, Int64).self) {
                if ip < 0 { visible = seq; continue }
                lastRow = seq
                if let claim = Self.claim(ip: ip, name: name, at: at, country: country, asn: asn, provider: provider) { claims.append(claim) }
            }
            self.lastSeen.withLock { $0 = max($0, visible) }
            Gauge(label: "ipquest_postgres_feed_polled_timestamp_seconds").record(Date().timeIntervalSince1970) // feed lag = now - this
            return ClaimChanges(claims: claims, cursor: claims.count < limit ? max(visible, cursor) : lastRow)
        }
    }

    // MARK: Resuming from a board checkpoint

    /// The feed position seen last (`changeCursor`, `changes`): how far this storage knows the
    /// table reaches. The engine positions its board by the feed, not by this.
    public var storagePosition: Int64 { lastSeen.withLock { $0 } }

    /// Positions follow the change feed: a batch's own `seq` does not say that every earlier
    /// `seq` is on the board (another instance's may not be followed yet), so none is returned.
    public func appendReturningPosition(_ claims: [Claim]) async throws -> Int64? {
        try await append(claims)
        return nil
    }

    /// The table's identity (`ipquest_state.board_id`, migration 5).
    public func generation() async throws -> Int64 {
        try await guarded {
            for try await id in try await self.client.query("SELECT board_id FROM ipquest_state WHERE id = 1", logger: self.logger).decode(Int64.self) {
                return id
            }
            return 0
        }
    }

    /// Every row committed after `position` by any instance, in `seq` order (the table keeps the
    /// latest claim per address, which is all a board needs); nil when the table is not the one
    /// the checkpoint was taken from (`board_id` differs) or is behind it (restored from an
    /// older backup). One transaction, so one snapshot for the check and the rows.
    public func claims(after position: Int64, generation expected: Int64) async throws -> [Claim]? {
        try await guarded(bounded: false) {
            try await self.client.withTransaction(logger: self.logger) { tx -> [Claim]? in
                try await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: self.logger)
                try await tx.query("SET LOCAL statement_timeout = 0", logger: self.logger)
                var state: (Int64, Int64)?
                for try await row in try await tx.query("SELECT board_id, last_seq FROM ipquest_state WHERE id = 1", logger: self.logger).decode((Int64, Int64).self) {
                    state = row
                }
                guard let (id, last) = state, id == expected, position <= last else { return nil }
                var claims: [Claim] = []
                let rows = try await tx.query("SELECT ip, name, claimed_at, country, asn, provider FROM claims WHERE seq > \(position) ORDER BY seq",
                                              logger: self.logger)
                for try await (ip, name, at, country, asn, provider) in rows.decode((Int64, String, Int64, String?, Int64?, String?).self) {
                    if let claim = Self.claim(ip: ip, name: name, at: at, country: country, asn: asn, provider: provider) { claims.append(claim) }
                }
                self.lastSeen.withLock { $0 = max($0, last) }
                return claims
            }
        }
    }

    /// Nothing to compact: the table holds one row per address whatever the checkpoints reach.
    public func allowFold(through position: Int64) {}

    static func claim(ip: Int64, name: String, at: Int64, country: String?, asn: Int64?, provider: String?) -> Claim? {
        guard let address = UInt32(exactly: ip) else { return nil }
        return Claim(address: IPv4Address(address), name: PlayerName(trusted: name), claimedAt: at,
                     origin: ClaimOrigin(country: country, asn: asn.flatMap { UInt32(exactly: $0) }, provider: provider))
    }

    // MARK: Aggregates (read by tests, tools and the benchmark)

    /// All-time addresses per player from the aggregate table.
    public func playerTotals() async throws -> [String: Int] {
        try await guarded {
            var totals: [String: Int] = [:]
            for try await (name, n) in try await self.client.query("SELECT name, addresses FROM player_scores WHERE addresses <> 0", logger: self.logger).decode((String, Int64).self) {
                totals[name] = Int(n)
            }
            return totals
        }
    }

    /// All-time addresses per (block, player) from the aggregate table.
    public func blockTotals() async throws -> [Int: [String: Int]] {
        try await guarded {
            var totals: [Int: [String: Int]] = [:]
            for try await (block, name, n) in try await self.client.query("SELECT block, name, addresses FROM block_scores WHERE addresses <> 0", logger: self.logger).decode((Int16, String, Int64).self) {
                totals[Int(block), default: [:]][name] = Int(n)
            }
            return totals
        }
    }

    // MARK: Failure handling

    /// Runs `body` with the configured timeout; while the database is known to be down, fails
    /// at once until the backoff has passed (then lets one attempt through as the probe).
    func guarded<T: Sendable>(bounded: Bool = true, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let now = ContinuousClock.now
        if let retryAt = health.withLock({ $0.retryAt }), now < retryAt {
            throw StorageUnavailable(underlying: DatabaseDown())
        }
        do {
            let value = bounded ? try await withTimeout(.milliseconds(Int64(settings.timeoutMilliseconds)), body) : try await body()
            health.withLock { $0 = Health() }
            return value
        } catch {
            let failures = health.withLock { h -> Int in
                h.failures += 1
                // 100 ms, 200 ms, … capped at 2 s.
                let delay = Duration.milliseconds(min(100 << min(h.failures - 1, 5), 2_000))
                h.retryAt = ContinuousClock.now + delay
                return h.failures
            }
            if failures == 1 { logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))"]) }
            throw StorageUnavailable(underlying: error)
        }
    }

    struct DatabaseDown: Error, CustomStringConvertible {
        var description: String { "database unreachable (backing off)" }
    }

    // MARK: Leadership

    private func startLeadership() {
        let task = Task.detached { [settings, logger, leader] in
            var delay = Duration.milliseconds(500)
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 1, logger: logger)
                    defer { Task { try? await connection.close() } }
                    // Poll for the session lock; hold it (and prove the connection alive) once taken.
                    while !Task.isCancelled {
                        var got = false
                        for try await flag in try await connection.query("SELECT pg_try_advisory_lock(\(PostgresMigrations.leaderLockKey))", logger: logger).decode(Bool.self) {
                            got = flag
                        }
                        if got {
                            leader.value.store(true, ordering: .releasing)
                            logger.notice("leadership acquired", metadata: ["pid": "\(getpid())"])
                            while !Task.isCancelled {
                                try await Task.sleep(for: .seconds(1))
                                try await connection.query("SELECT 1", logger: logger)
                            }
                        }
                        delay = .milliseconds(500)
                        try await Task.sleep(for: .seconds(1))
                    }
                } catch {
                    if leader.value.exchange(false, ordering: .acquiringAndReleasing) {
                        logger.warning("leadership lost", metadata: ["error": "\(error)"])
                    }
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
            leader.value.store(false, ordering: .releasing)
        }
        leaderTask.withLock { $0 = task }
    }
}

/// Runs `body`, giving up after `timeout`: a race in a task group between the body's result and
/// `Task.sleep(for: timeout)`, the first to finish wins and the other is cancelled. No polling.
///
/// The body runs in a task of its own, outside the group, and keeps running detached when it
/// times out: it is cancelled, which postgres-nio honours while waiting for a connection but not
/// once the statement is sent, and a group would wait for such a body. The group's contestant
/// waits for the body's result through a stream, which a cancelled waiter leaves at once.
/// The race too runs in a task of its own, so, as before, cancelling the caller does not cut it
/// short: the call ends with the body's result or the timeout.
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let (result, deliver) = AsyncStream.makeStream(of: Result<T, any Error>.self, bufferingPolicy: .bufferingNewest(1))
    let work = Task {
        do { deliver.yield(.success(try await body())) } catch { deliver.yield(.failure(error)) }
        deliver.finish()
    }
    let race = Task {
        await withTaskGroup(of: Result<T, any Error>?.self) { group in
            group.addTask {
                for await outcome in result { return outcome }
                return nil // cancelled: the timer won
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
    guard let outcome = await race.value else {
        work.cancel()
        throw TimedOut(after: timeout)
    }
    return try outcome.get()
}

final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

struct TimedOut: Error, CustomStringConvertible {
    var after: Duration
    var description: String { "timed out after \(after)" }
}
