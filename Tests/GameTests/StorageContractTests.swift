import Foundation
import GRDB
import IPAddress
import Logging
import Synchronization
import Testing
@testable import Game
@testable import GameRules

/// One contract, both backends: whatever SQLite does with claims, PostgreSQL does too.
/// PostgreSQL runs against the cluster scripts/with-postgres.sh starts (`make test`); in CI a
/// missing cluster fails these tests instead of skipping them.
@Suite struct StorageContractTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    static var backends: [Backend] { PostgresTestCluster.enabled ? Backend.allCases : [.sqlite] }

    /// Opens the backend; `reopen` opens the same database again (a restart).
    struct Opened: Sendable {
        var storage: any ClaimStorage
        var reopen: @Sendable () async throws -> any ClaimStorage
        /// Removes the SQLite database's directory once the test is done with it.
        var directory: TemporaryDirectory?
    }

    /// A directory removed when the last copy of its owner goes (a test's `Opened`).
    final class TemporaryDirectory: Sendable {
        let path: String
        init(_ path: String) { self.path = path }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func open(_ backend: Backend) async throws -> Opened {
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-contract-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = dir + "/c.sqlite"
            return Opened(storage: try SQLiteClaimStorage(path: path, durability: .normal),
                          reopen: { try SQLiteClaimStorage(path: path, durability: .normal) }, directory: TemporaryDirectory(dir))
        case .postgres:
            let settings = try await PostgresTestCluster.freshDatabase()
            let logger = PostgresTestCluster.logger
            return Opened(storage: try await PostgresClaimStorage(settings: settings, logger: logger, leadership: false)) {
                try await PostgresClaimStorage(settings: settings, logger: logger, leadership: false)
            }
        }
    }

    static func claim(_ ip: String, _ name: String, _ at: Int64) -> Claim {
        Claim(address: IPv4Address(ip)!, name: PlayerName(trusted: name), claimedAt: at)
    }

    static func sorted(_ claims: [Claim]) -> [Claim] { claims.sorted { $0.address.value < $1.address.value } }

    @Test(arguments: backends) func emptyStorageLoadsNothing(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        #expect(try await opened.storage.loadAll().isEmpty)
        #expect(try await opened.storage.count() == 0)
        try await opened.storage.append([]) // an empty batch is fine
        #expect(try await opened.storage.count() == 0)
    }

    @Test(arguments: backends) func latestClaimPerAddressWinsWithinAndAcrossBatches(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let s = opened.storage
        try await s.append([Self.claim("1.2.3.4", "alice", 100), Self.claim("1.2.3.5", "bob", 100), Self.claim("1.2.3.4", "carol", 101)])
        try await s.append([Self.claim("1.2.3.5", "alice", 200), Self.claim("255.255.255.255", "dave", 201), Self.claim("0.0.0.0", "eve", 202)])
        let expected = Self.sorted([
            Self.claim("0.0.0.0", "eve", 202), Self.claim("1.2.3.4", "carol", 101),
            Self.claim("1.2.3.5", "alice", 200), Self.claim("255.255.255.255", "dave", 201),
        ])
        #expect(Self.sorted(try await s.loadAll()) == expected)
        #expect(try await s.count() == 4)
        // Upkeep never changes what is stored.
        for _ in 0..<3 { _ = try await s.maintain(budget: 1) }
        #expect(Self.sorted(try await s.loadAll()) == expected)
        // A restart reads the same claims back.
        let again = try await opened.reopen()
        #expect(Self.sorted(try await again.loadAll()) == expected)
    }

    @Test(arguments: backends) func originsAreStoredWithTheClaim(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let s = opened.storage
        let follower = try await opened.reopen() // another instance, for the change feed
        let cursor = try await follower.changeCursor()
        let de = ClaimOrigin(country: "DE", asn: 3320)
        let aws = ClaimOrigin(country: "US", asn: 16509, provider: "aws")
        try await s.append([
            Claim(address: IPv4Address("1.2.3.4")!, name: PlayerName(trusted: "alice"), claimedAt: 100, origin: de),
            Claim(address: IPv4Address("1.2.3.5")!, name: PlayerName(trusted: "bob"), claimedAt: 100, origin: aws),
            Claim(address: IPv4Address("1.2.3.6")!, name: PlayerName(trusted: "carol"), claimedAt: 100),
        ])
        // A later claim of the same address replaces the origin too (the address moved networks).
        try await s.append([Claim(address: IPv4Address("1.2.3.4")!, name: PlayerName(trusted: "bob"), claimedAt: 200, origin: aws)])
        let expected = [
            Claim(address: IPv4Address("1.2.3.4")!, name: PlayerName(trusted: "bob"), claimedAt: 200, origin: aws),
            Claim(address: IPv4Address("1.2.3.5")!, name: PlayerName(trusted: "bob"), claimedAt: 100, origin: aws),
            Claim(address: IPv4Address("1.2.3.6")!, name: PlayerName(trusted: "carol"), claimedAt: 100),
        ]
        #expect(Self.sorted(try await s.loadAll()) == expected)
        _ = try await s.maintain(budget: 10) // SQLite folds its journal: origins survive that too
        #expect(Self.sorted(try await opened.reopen().loadAll()) == expected)
        if let cursor {
            let changes = try await follower.changes(since: cursor, limit: 100)
            #expect(Self.sorted(changes.claims) == expected)
        }
    }

    @Test(arguments: backends) func manyRandomBatchesMatchAModel(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        var model: [UInt32: Claim] = [:]
        var rng = SystemRandomNumberGenerator()
        for batch in 0..<20 {
            var claims: [Claim] = []
            for _ in 0..<Int.random(in: 1...300, using: &rng) {
                // Few addresses so that overrides are common, spread over several /8 blocks.
                let ip = UInt32.random(in: 0..<4, using: &rng) << 24 | UInt32.random(in: 0..<500, using: &rng)
                let c = Claim(address: IPv4Address(ip), name: PlayerName(trusted: "p\(Int.random(in: 0..<7, using: &rng))"), claimedAt: Int64(batch))
                claims.append(c)
                model[ip] = c
            }
            try await opened.storage.append(claims)
            if batch % 5 == 0 { _ = try await opened.storage.maintain(budget: 100) }
        }
        #expect(Self.sorted(try await opened.storage.loadAll()) == Self.sorted(Array(model.values)))
        #expect(try await opened.storage.count() == model.count)
    }

    /// The engine over either backend: claims survive a restart and rebuild the same board.
    @Test(arguments: backends) func engineRestartRebuildsTheSameBoard(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        var logger = PostgresTestCluster.logger
        logger.logLevel = .error
        let engine = try await GameEngine(storage: opened.storage, logger: logger)
        let run = Task { try await engine.run() }
        for i in 0..<200 {
            _ = try await engine.claim(address: IPv4Address(UInt32(i * 7919)), name: PlayerName(trusted: "n\(i % 5)"))
        }
        engine.close()
        _ = try? await run.value
        let before = engine.withBoard { board in Period.allCases.map { p in board.player(PlayerName(trusted: "n1"), period: p)?.addresses } }
        let restarted = try await GameEngine(storage: try await opened.reopen(), logger: logger)
        let after = restarted.withBoard { board in Period.allCases.map { p in board.player(PlayerName(trusted: "n1"), period: p)?.addresses } }
        #expect(before == after)
        #expect(restarted.withBoard { $0.addressCount } == 200)
    }

    /// The writer decides batch N+1 while batch N is committed but not yet on the board: N's
    /// claims must count as if applied (previous owner, refresh interval), and settling N
    /// then puts it on the board.
    /// A batch is one transaction: when a row fails (here a trigger refuses one name), none of
    /// the batch is stored, and the next batch is stored as usual.
    @Test func aFailedSQLiteBatchStoresNoneOfItsClaims() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-contract-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/c.sqlite"
        let storage = try SQLiteClaimStorage(path: path, durability: .normal)
        try await storage.append([Self.claim("1.1.1.1", "alice", 100)])
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: """
                CREATE TRIGGER poison BEFORE INSERT ON claim_journal WHEN NEW.name = 'poison'
                BEGIN SELECT RAISE(ABORT, 'poisoned claim'); END
                """)
        }
        await #expect(throws: DatabaseError.self) {
            try await storage.append([Self.claim("2.2.2.2", "bob", 101), Self.claim("3.3.3.3", "poison", 102), Self.claim("4.4.4.4", "carol", 103)])
        }
        try await storage.append([Self.claim("5.5.5.5", "dave", 104)])
        let expected = [Self.claim("1.1.1.1", "alice", 100), Self.claim("5.5.5.5", "dave", 104)]
        #expect(Self.sorted(try await storage.loadAll()) == expected)
        #expect(try await storage.maintain(budget: 100) == 2)
        #expect(try await storage.journalLength() == 0)
        #expect(Self.sorted(try await SQLiteClaimStorage(path: path, durability: .normal).loadAll()) == expected)
    }

    @Test func batchesDecidedAgainstACommittedBatchNotYetOnTheBoard() async throws {
        let opened = try await Self.open(.sqlite)
        var logger = PostgresTestCluster.logger
        logger.logLevel = .error
        let clock = WallClock { (1_700_000_000, 0) }
        let engine = try await GameEngine(storage: opened.storage, clock: clock, logger: logger)
        let a = IPv4Address("10.0.0.1")!, b = IPv4Address("10.0.0.2")!
        let answers = Answers()
        func pending(_ address: IPv4Address, _ name: String) -> GameEngine.Pending {
            GameEngine.Pending(address: address, name: PlayerName(trusted: name), origin: .unknown) { answers.add(name, $0) }
        }
        let first = engine.decide([pending(a, "alice"), pending(b, "bob")], unapplied: [])
        let committed = try #require(await engine.store(first))
        // Next batch, decided before the first one is settled.
        let second = engine.decide([pending(a, "carol"), pending(b, "bob")], unapplied: committed.decided.effective)
        #expect(second.outcomes == [.claimed(previousOwner: PlayerName(trusted: "alice")), .unchanged])
        #expect(second.effective.map(\.address) == [a])
        #expect(engine.withBoard { $0.addressCount } == 0)
        engine.settle(committed)
        #expect(engine.withBoard { $0.addressCount } == 2)
        #expect(answers.names == ["alice", "bob"])
        let stored = try #require(await engine.store(second))
        engine.settle(stored)
        #expect(engine.withBoard { $0.player(PlayerName(trusted: "carol"), period: .all)?.addresses } == 1)
        #expect(engine.withBoard { $0.player(PlayerName(trusted: "alice"), period: .all) }?.addresses ?? 0 == 0)
        #expect(Set(try await opened.storage.loadAll().map { "\($0.address)=\($0.name.value)" }) == ["10.0.0.1=carol", "10.0.0.2=bob"])
    }
}

/// The engine's writer against a storage that records its calls: a queue that empties for a
/// moment between claims is not idleness, so no journal fold runs between those batches; a
/// queue that stays empty past the grace is, and the journal is folded then.
@Suite struct WriterIdleTests {
    /// Forwards to SQLite and records "append n" / "maintain" calls.
    final class RecordingStorage: ClaimStorage {
        let base: SQLiteClaimStorage
        let calls = Mutex<[String]>([])
        init(_ base: SQLiteClaimStorage) { self.base = base }
        func loadAll() async throws -> [Claim] { try await base.loadAll() }
        func append(_ claims: [Claim]) async throws {
            calls.withLock { $0.append("append \(claims.count)") }
            try await base.append(claims)
        }
        func maintain(budget: Int) async throws -> Int {
            let folded = try await base.maintain(budget: budget)
            if folded > 0 { calls.withLock { $0.append("maintain \(folded)") } }
            return folded
        }
        var hasUpkeep: Bool { base.hasUpkeep }
        func count() async throws -> Int { try await base.count() }
        func changeCursor() async throws -> Int64? { nil }
        func changes(since cursor: Int64, limit: Int) async throws -> ClaimChanges { ClaimChanges(claims: [], cursor: cursor) }
    }

    /// Runs `body` against an engine whose writer is running, on a recorded SQLite file in a new
    /// directory; then closes the engine, waits for its writer and removes the directory.
    static func withRecordedWriter(
        _ configuration: GameEngine.Configuration, _ body: (GameEngine, RecordingStorage) async throws -> Void
    ) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-writer-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = RecordingStorage(try SQLiteClaimStorage(path: dir + "/w.sqlite", durability: .normal))
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let engine = try await GameEngine(storage: storage, configuration: configuration, logger: logger)
        let writer = Task { try await engine.run() }
        defer { writer.cancel() }
        try await body(engine, storage)
        engine.close()
        try await writer.value
    }

    /// Claims `address` for "p" and returns when the engine has answered.
    static func claim(_ engine: GameEngine, _ address: String) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            engine.submit(address: IPv4Address(address)!, name: PlayerName(trusted: "p")) { _ in done.resume() }
        }
    }

    @Test(.timeLimit(.minutes(1))) func claimsArrivingWithinTheGraceAreNotSeparatedByAFold() async throws {
        var configuration = GameEngine.Configuration()
        configuration.idleGrace = .milliseconds(400)
        try await Self.withRecordedWriter(configuration) { engine, storage in
            func claim(_ address: String) async { await Self.claim(engine, address) }
            // A client that claims again 20 ms after each answer: well inside the grace.
            for i in 1...4 {
                await claim("10.0.0.\(i)")
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(storage.calls.withLock { $0 } == ["append 1", "append 1", "append 1", "append 1"])
            // Quiet past the grace: now the journal is folded.
            let deadline = ContinuousClock.now + .seconds(10)
            while storage.calls.withLock({ $0.count }) < 5, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(storage.calls.withLock { $0 } == ["append 1", "append 1", "append 1", "append 1", "maintain 4"])
        }
    }
}

/// Answers collected from claim callbacks, in order.
final class Answers: Sendable {
    private let collected = Mutex<[String]>([])
    func add(_ name: String, _ result: Result<Scoreboard.Outcome, any Error>) {
        if case .success = result { collected.withLock { $0.append(name) } }
    }
    var names: [String] { collected.withLock { $0 } }
}

/// Under load the writer lets claims gather for `gatherWindow` before a batch, so a busy
/// server commits fewer, larger transactions; a lone claim on a quiet server never waits.
@Suite struct WriterGatherTests {
    @Test(.timeLimit(.minutes(1))) func claimsGatherUnderLoadAndALoneClaimDoesNotWait() async throws {
        var configuration = GameEngine.Configuration()
        // Far longer than any step below takes, even on a loaded machine (the suite runs in
        // parallel): a claim that waited for the window is told from one that did not by 1 s.
        configuration.gatherWindow = .seconds(2)
        try await WriterIdleTests.withRecordedWriter(configuration) { engine, storage in
            func claims(_ addresses: [String], spacing: Duration = .zero) async throws {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (i, address) in addresses.enumerated() {
                        if i > 0, spacing > .zero { try await Task.sleep(for: spacing) }
                        group.addTask { await WriterIdleTests.claim(engine, address) }
                    }
                    try await group.waitForAll()
                }
            }
            func appends() -> [String] { storage.calls.withLock { $0 }.filter { $0.hasPrefix("append") } }

            // A quiet server: the claim is committed at once, not after the window.
            var started = ContinuousClock.now
            try await claims(["10.0.0.1"])
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(appends() == ["append 1"])

            // Load: claims submitted together until one batch holds more than one of them.
            var burst = 0
            while appends().last.map({ $0 != "append 1" }) != true, burst < 20 {
                burst += 1
                try await claims((1...4).map { "10.1.\(burst).\($0)" })
            }
            #expect(appends().last.map { $0 != "append 1" } == true)

            // The next claims, 40 ms apart, gather into one batch instead of three.
            let before = appends().count
            try await claims(["10.2.0.1", "10.2.0.2", "10.2.0.3"], spacing: .milliseconds(40))
            #expect(Array(appends().dropFirst(before)) == ["append 3"])

            // One claim alone still waits (the last batch held three), and after it a lone claim
            // does not.
            try await claims(["10.3.0.1"])
            started = ContinuousClock.now
            try await claims(["10.3.0.2"])
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(Array(appends().dropFirst(before)) == ["append 3", "append 1", "append 1"])
        }
    }
}
