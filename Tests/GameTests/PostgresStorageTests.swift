import Foundation
import IPAddress
import Logging
import PostgresNIO
import Synchronization
import IPQuestTestSupport
import ConfigFile
import Testing
@testable import Game
@testable import GameRules

/// What only the PostgreSQL backend has: aggregates, the change feed, migrations under a lock,
/// several engines on one database, and behaviour while the database is away.
@Suite(.tags(.postgres), .enabled(if: PostgresTestCluster.enabled, "needs IPQUEST_POSTGRES_URL (scripts/with-postgres.sh)"))
struct PostgresStorageTests {
    let logger = PostgresTestCluster.logger

    func storage(_ settings: PostgresSettings, leadership: Bool = false) async throws -> PostgresClaimStorage {
        try await PostgresClaimStorage(settings: settings, logger: logger, leadership: leadership)
    }

    @Test func settingsParseURLOptions() throws {
        let s = try PostgresSettings(url: "postgres://u:p%40ss@db.example:6543/game?sslmode=require&pool_size=3&statement_timeout_ms=100&timeout_ms=50")
        #expect(s.host == "db.example" && s.port == 6543 && s.username == "u" && s.password == "p@ss" && s.database == "game")
        #expect(s.sslMode == .require && s.poolSize == 3 && s.statementTimeoutMilliseconds == 100 && s.timeoutMilliseconds == 50)
        #expect(s.redacted == "postgres://u@db.example:6543/game")
        #expect(throws: PostgresSettings.InvalidURL.self) { try PostgresSettings(url: "postgres://h/db?sslmode=maybe") }
        #expect(throws: PostgresSettings.InvalidURL.self) { try PostgresSettings(url: "postgres://h/db?bogus=1") }
        var cfg = ServeConfiguration()
        #expect(throws: ConfigFileError.self) { try cfg.set("database", "postgres://h/db?pool_size=0") }
        try cfg.set("database", "postgresql://h/db")
    }

    @Test func aggregatesEqualARecountAfterOverrides() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let s = try await storage(settings)
        var model: [UInt32: String] = [:]
        for batch in 0..<30 {
            var claims: [Claim] = []
            for _ in 0..<200 {
                let ip = UInt32.random(in: 0..<6) << 24 | UInt32.random(in: 0..<300)
                let name = "p\(Int.random(in: 0..<5))"
                claims.append(Claim(address: IPv4Address(ip), name: PlayerName(trusted: name), claimedAt: Int64(batch)))
                model[ip] = name
            }
            try await s.append(claims)
        }
        var players: [String: Int] = [:]
        var blocks: [Int: [String: Int]] = [:]
        for (ip, name) in model {
            players[name, default: 0] += 1
            blocks[Int(ip >> 24), default: [:]][name, default: 0] += 1
        }
        #expect(try await s.playerTotals() == players)
        #expect(try await s.blockTotals() == blocks)
    }

    /// Two instances writing the same addresses at the same time: the aggregates still equal a
    /// recount of what is stored (each batch sees the batches committed before it).
    @Test func aggregatesStayExactUnderConcurrentWriters() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let writers = [try await storage(settings), try await storage(settings)]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (w, s) in writers.enumerated() {
                group.addTask {
                    for batch in 0..<40 {
                        let claims = (0..<150).map { _ in
                            Claim(address: IPv4Address(UInt32.random(in: 0..<4) << 24 | UInt32.random(in: 0..<200)),
                                  name: PlayerName(trusted: "w\(w)p\(Int.random(in: 0..<3))"), claimedAt: Int64(batch))
                        }
                        try await s.append(claims)
                    }
                }
            }
            try await group.waitForAll()
        }
        var players: [String: Int] = [:]
        var blocks: [Int: [String: Int]] = [:]
        for claim in try await writers[0].loadAll() {
            players[claim.name.value, default: 0] += 1
            blocks[Int(claim.address.value >> 24), default: [:]][claim.name.value, default: 0] += 1
        }
        #expect(try await writers[0].playerTotals() == players)
        #expect(try await writers[0].blockTotals() == blocks)
    }

    @Test func changeFeedDeliversOtherWritersClaimsInCommitOrder() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let a = try await storage(settings), b = try await storage(settings), reader = try await storage(settings)
        let start = try #require(try await reader.changeCursor())
        try await b.append([Claim(address: IPv4Address("9.9.9.9")!, name: PlayerName(trusted: "x"), claimedAt: 1)])
        try await a.append([Claim(address: IPv4Address("8.8.8.8")!, name: PlayerName(trusted: "y"), claimedAt: 2)])
        try await b.append([Claim(address: IPv4Address("9.9.9.9")!, name: PlayerName(trusted: "z"), claimedAt: 3)])
        let all = try await reader.changes(since: start, limit: 100)
        #expect(all.claims.map(\.name.value) == ["y", "z"]) // latest per address, in commit order
        #expect(all.cursor == start + 3)
        let paged = try await reader.changes(since: start, limit: 1)
        #expect(paged.claims.map(\.name.value) == ["y"])
        #expect(try await reader.changes(since: paged.cursor, limit: 10).claims.map(\.name.value) == ["z"])
        #expect(try await reader.changes(since: all.cursor, limit: 10).claims.isEmpty)
        // A writer is not sent its own rows back, and its cursor still moves past them.
        let own = try await a.changes(since: start, limit: 100)
        #expect(own.claims.map(\.name.value) == ["z"])
        #expect(own.cursor == start + 3)
    }

    @Test func migrationsFromEmptyDryRunFailureAndConcurrentStarts() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let dry = try await PostgresMigrations.migrate(settings: settings, dryRun: true, logger: logger)
        let versions = PostgresMigrations.all.map(\.version)
        let next = versions.max()! + 1
        #expect(dry == .init(applied: [], pending: versions))
        let tables = try await PostgresTestCluster.query(settings, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        #expect(try tables[0].decode(Int64.self) == 0, "a dry run creates nothing")

        // Eight starts at once: each migration is applied exactly once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { try await PostgresMigrations.migrate(settings: settings, logger: self.logger) } }
            try await group.waitForAll()
        }
        let after = try await PostgresMigrations.migrate(settings: settings, dryRun: true, logger: logger)
        #expect(after == .init(applied: versions, pending: []))

        // A failing migration leaves the schema as it was.
        var broken = PostgresMigrations.all
        broken.append(.init(version: next, name: "broken", sql: ["CREATE TABLE half_done (x int)", "SELECT no_such_function()"]))
        let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 5, logger: logger)
        await #expect(throws: (any Error).self) { try await PostgresMigrations.migrate(on: connection, migrations: broken, logger: self.logger) }
        let halfDone = try await connection.query("SELECT to_regclass('half_done') IS NULL", logger: logger).collect()
        #expect(try halfDone[0].decode(Bool.self))
        let status = try await PostgresMigrations.migrate(on: connection, migrations: broken, dryRun: true, logger: logger)
        #expect(status == .init(applied: versions, pending: [next]))
        try await connection.close()
    }

    /// A database with claims from before a migration keeps them all after it.
    @Test func upgradingKeepsStoredClaims() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        try await PostgresMigrations.migrate(settings: settings, upTo: 1, logger: logger)
        _ = try await PostgresTestCluster.query(settings, "INSERT INTO claims (ip, name, claimed_at, seq) VALUES (16909060, 'old', 100, 1)")
        let upgraded = try await storage(settings) // migrates the rest on open
        #expect(try await upgraded.loadAll() == [Claim(address: IPv4Address("1.2.3.4")!, name: PlayerName(trusted: "old"), claimedAt: 100)])
    }

    /// Claims stored by the version-3 batch function (previous owner found by a join) and then
    /// taken over after migration 4 (previous owner returned by the upsert) keep the
    /// aggregates exact.
    @Test func aggregatesStayExactAcrossTheUpgradeToVersion4() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        try await PostgresMigrations.migrate(settings: settings, upTo: 3, logger: logger)
        let old = try await PostgresClaimStorage(settings: settings, logger: logger, migrate: false, leadership: false)
        func claim(_ ip: String, _ name: String) -> Claim { Claim(address: IPv4Address(ip)!, name: PlayerName(trusted: name), claimedAt: 100) }
        try await old.append([claim("1.0.0.1", "ann"), claim("1.0.0.2", "ann"), claim("2.0.0.1", "bob")])
        old.shutdown()
        let upgraded = try await storage(settings) // applies migration 4
        try await upgraded.append([claim("1.0.0.1", "bob"), claim("2.0.0.1", "cid"), claim("3.0.0.1", "ann")])
        try await upgraded.append([claim("1.0.0.2", "bob"), claim("1.0.0.1", "ann")])
        #expect(try await upgraded.playerTotals() == ["ann": 2, "bob": 1, "cid": 1])
        #expect(try await upgraded.blockTotals() == [1: ["ann": 1, "bob": 1], 2: ["cid": 1], 3: ["ann": 1]])
    }

    /// Two engines on one database (as two instances would be) converge within a second.
    @Test func twoEnginesConverge() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        var configuration = GameEngine.Configuration()
        configuration.followInterval = .milliseconds(100)
        configuration.snapshotInterval = .milliseconds(50)
        let a = try await GameEngine(storage: try await storage(settings), configuration: configuration, logger: logger)
        let b = try await GameEngine(storage: try await storage(settings), configuration: configuration, logger: logger)
        let runs = [Task { try await a.run() }, Task { try await b.run() }]
        defer { a.close(); b.close(); runs.forEach { $0.cancel() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (k, engine) in [a, b].enumerated() {
                group.addTask {
                    for i in 0..<400 {
                        // Overlapping addresses: both engines fight over the same ones.
                        _ = try await engine.claim(address: IPv4Address(UInt32(i % 250) << 20), name: PlayerName(trusted: "e\(k)-\(i % 3)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        let done = ContinuousClock.now
        func state(_ e: GameEngine) -> [String: Int] {
            e.withBoard { board in
                var out: [String: Int] = [:]
                for k in 0..<2 { for j in 0..<3 { out["e\(k)-\(j)"] = board.player(PlayerName(trusted: "e\(k)-\(j)"), period: .all)?.addresses ?? 0 } }
                return out
            }
        }
        while state(a) != state(b), ContinuousClock.now - done < .seconds(3) { try await Task.sleep(for: .milliseconds(20)) }
        let took = ContinuousClock.now - done
        #expect(state(a) == state(b))
        #expect(took < .seconds(1), "converged after \(took)")
        #expect(state(a).values.reduce(0, +) == 250)
        let stored = try await storage(settings).playerTotals()
        #expect(stored.filter { $0.value > 0 } == state(a).filter { $0.value > 0 })
    }

    /// With the database gone, claims answer quickly with an error instead of hanging, reads keep
    /// working, and claims succeed again once it is back.
    @Test func lostDatabaseFailsFastAndRecovers() async throws {
        let cluster = try PrivatePostgresCluster()
        defer { cluster.destroy() }
        var settings = cluster.settings
        settings.timeoutMilliseconds = 1_000
        let engine = try await GameEngine(storage: try await storage(settings, leadership: true), logger: logger)
        let run = Task { try await engine.run() }
        defer { engine.close(); run.cancel() }
        _ = try await engine.claim(address: IPv4Address("1.1.1.1")!, name: PlayerName(trusted: "before"))
        try cluster.stop()
        var slowest = Duration.zero
        for i in 0..<20 {
            let started = ContinuousClock.now
            await #expect(throws: ClaimError.self) {
                _ = try await engine.claim(address: IPv4Address(UInt32(0x0200_0000 + i)), name: PlayerName(trusted: "during"))
            }
            slowest = max(slowest, ContinuousClock.now - started)
        }
        #expect(slowest < .milliseconds(2_500), "slowest failed claim took \(slowest)")
        #expect(engine.player(PlayerName(trusted: "before"), period: .all)?.addresses == 1, "reads keep serving")
        try cluster.start()
        var recovered = false
        let deadline = ContinuousClock.now + .seconds(15)
        while !recovered, ContinuousClock.now < deadline {
            if (try? await engine.claim(address: IPv4Address("3.3.3.3")!, name: PlayerName(trusted: "after"))) != nil { recovered = true } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(recovered)
    }
}
