import Foundation
import IPAddress
import Logging
import PostgresNIO
import IPQuestTestSupport
import Testing
@testable import Game
@testable import GameRules

/// A claim batch that gives up waiting (the claims answer 503) while its statement goes on
/// running in the database: whether it commits or not, the board ends up equal to what is stored.
@Suite(.tags(.postgres), .enabled(if: PostgresTestCluster.enabled, "needs IPQUEST_POSTGRES_URL (scripts/with-postgres.sh)"))
struct PostgresUnknownOutcomeTests {
    let logger = PostgresTestCluster.logger

    /// A running engine on `settings` (feed read every 50 ms), a reader storage of its own for
    /// the checks, and a second session that can hold the commit counter's row lock, which
    /// every batch takes first.
    struct Setup {
        let engine: GameEngine
        let reader: PostgresClaimStorage
        let blocker: PostgresConnection
        let run: Task<Void, any Error>

        func close() {
            engine.close()
            run.cancel()
            reader.shutdown()
            Task { [blocker] in try? await blocker.close() }
        }

        /// Holds the row lock of ipquest_state until `release`: batches wait for it.
        func block() async throws {
            try await blocker.query("BEGIN", logger: PostgresTestCluster.logger)
            try await blocker.query("SELECT last_seq FROM ipquest_state WHERE id = 1 FOR UPDATE", logger: PostgresTestCluster.logger)
        }

        func release() async throws {
            try await blocker.query("ROLLBACK", logger: PostgresTestCluster.logger)
        }

        /// Where the board and the database disagree (owner per address, all-time addresses per
        /// player); nil when they agree.
        func divergence() async throws -> String? {
            let stored = try await reader.loadAll()
            let totals = try await reader.playerTotals()
            return engine.withBoard { board -> String? in
                if board.addressCount != stored.count { return "board has \(board.addressCount) addresses, database \(stored.count)" }
                for claim in stored where board.owner(of: claim.address)?.name != claim.name {
                    return "\(claim.address): board \(board.owner(of: claim.address)?.name.value ?? "none"), database \(claim.name.value)"
                }
                for (name, n) in totals where board.player(PlayerName(trusted: name), period: .all)?.addresses ?? 0 != n {
                    return "\(name): board \(board.player(PlayerName(trusted: name), period: .all)?.addresses ?? 0), database \(n)"
                }
                return nil
            }
        }
    }

    func start(_ settings: PostgresSettings) async throws -> Setup {
        let storage = try await PostgresClaimStorage(settings: settings, logger: logger, leadership: false)
        var configuration = GameEngine.Configuration()
        configuration.followInterval = .milliseconds(50)
        let engine = try await GameEngine(storage: storage, configuration: configuration, logger: logger)
        var readerSettings = settings
        readerSettings.timeoutMilliseconds = 10_000
        let reader = try await PostgresClaimStorage(settings: readerSettings, logger: logger, migrate: false, leadership: false)
        let blocker = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 97, logger: logger)
        return Setup(engine: engine, reader: reader, blocker: blocker, run: Task { try await engine.run() })
    }

    func claim(_ engine: GameEngine, _ ip: String, _ name: String) async throws -> Scoreboard.Outcome {
        try await engine.claim(address: IPv4Address(ip)!, name: PlayerName(trusted: name))
    }

    /// Claims until one is answered (the timeouts here are short, a slow machine may miss one,
    /// and each failure backs off a little).
    func claimAnswered(_ engine: GameEngine, _ ip: String, _ name: String) async throws -> Bool {
        try await eventually { (try? await claim(engine, ip, name)) != nil }
    }

    /// The batch waits for the lock longer than the timeout (503), then commits: its claim
    /// reaches the board through the change feed, and later claims of the same instance
    /// keep the board equal to the database.
    @Test func batchCommittedAfterItsTimeoutReachesTheBoard() async throws {
        var settings = try await PostgresTestCluster.freshDatabase()
        settings.timeoutMilliseconds = 300
        settings.statementTimeoutMilliseconds = 30_000
        let setup = try await start(settings)
        defer { setup.close() }
        try #require(try await claimAnswered(setup.engine, "1.0.0.1", "ann"))

        // A new address, then (a second unknown outcome) one taken from another player.
        for (round, (ip, expected)) in [("2.0.0.2", ["ann": 1, "bob": 1]), ("1.0.0.1", ["bob": 2, "cid": 1])].enumerated() {
            try await setup.block()
            await #expect(throws: ClaimError.self) { _ = try await claim(setup.engine, ip, "bob") }
            try await setup.release() // the statement was still waiting: it commits now
            let stored = try await eventually { try await setup.reader.playerTotals() == expected }
            try #require(stored, "round \(round): the timed-out batch committed")
            _ = try await eventually { try await setup.divergence() == nil }
            let difference = try await setup.divergence()
            #expect(difference == nil, "round \(round): the board differs from the database")
            #expect(setup.engine.withBoard { $0.owner(of: IPv4Address(ip)!)?.name.value } == "bob")
            // Claims answer again (once the back-off after the failure has passed).
            #expect(try await claimAnswered(setup.engine, "3.0.0.\(round)", "cid"))
        }
        #expect(setup.engine.player(PlayerName(trusted: "bob"), period: .all)?.addresses == 2)

        // The instance's own claims after the unknown outcomes are not counted twice.
        #expect(try await claimAnswered(setup.engine, "2.0.0.2", "ann"))
        // A few feed rounds after that claim, counted by the engine, not guessed from the clock.
        let rounds = setup.engine.followRounds
        #expect(await eventually { setup.engine.followRounds >= rounds + 3 })
        #expect(try await setup.divergence() == nil)
        #expect(setup.engine.player(PlayerName(trusted: "ann"), period: .all)?.addresses == 1)
        #expect(try await setup.reader.playerTotals() == ["ann": 1, "bob": 1, "cid": 2])
    }

    /// The batch gives up (503) and the database cancels its statement too: nothing is
    /// stored and nothing reaches the board.
    @Test func batchRolledBackAfterItsTimeoutStaysOffTheBoard() async throws {
        var settings = try await PostgresTestCluster.freshDatabase()
        settings.timeoutMilliseconds = 200
        settings.statementTimeoutMilliseconds = 600
        let setup = try await start(settings)
        defer { setup.close() }
        try #require(try await claimAnswered(setup.engine, "1.0.0.1", "ann"))
        try await setup.block()
        await #expect(throws: ClaimError.self) { _ = try await claim(setup.engine, "2.0.0.2", "bob") }
        // The server cancels the waiting statement at its statement timeout.
        let cancelled = try await eventually {
            let rows = try await PostgresTestCluster.query(settings, """
                SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ipquest_append(%' AND pid <> pg_backend_pid()
                                                         AND state = 'active'
                """)
            return try rows[0].decode(Int64.self) == 0
        }
        try #require(cancelled)
        try await setup.release()
        #expect(try await claimAnswered(setup.engine, "3.0.0.3", "cid"))
        // A few feed rounds after that claim, counted by the engine, not guessed from the clock.
        let rounds = setup.engine.followRounds
        #expect(await eventually { setup.engine.followRounds >= rounds + 3 })
        #expect(try await setup.divergence() == nil)
        #expect(try await setup.reader.playerTotals() == ["ann": 1, "cid": 1])
        #expect(setup.engine.withBoard { $0.owner(of: IPv4Address("2.0.0.2")!) } == nil)
    }
}
