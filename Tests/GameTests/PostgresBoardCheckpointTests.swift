import Foundation
import IPAddress
import Logging
import Testing
@testable import Game
@testable import GameRules

/// Issue 24 on PostgreSQL: an instance resumes its board from its own checkpoint plus the rows
/// committed after the checkpoint's feed position (by any instance, its own included), and that
/// is exactly the board a full load gives; a damaged checkpoint, one from another database, or
/// one taken before rows were deleted behind the feed's back is rebuilt from the table.
@Suite(.serialized, .tags(.postgres, .slow), .enabled(if: PostgresTestCluster.enabled, "needs IPQUEST_POSTGRES_URL (scripts/with-postgres.sh)"))
struct PostgresBoardCheckpointTests {
    let logger = PostgresTestCluster.logger
    static let now = BoardCheckpointTests.now

    func storage(_ settings: PostgresSettings) async throws -> PostgresClaimStorage {
        try await PostgresClaimStorage(settings: settings, logger: logger, leadership: false)
    }

    func engine(_ settings: PostgresSettings, checkpoint: String?) async throws -> GameEngine {
        var c = GameEngine.Configuration()
        c.checkpointPath = checkpoint
        c.followInterval = .milliseconds(20)
        return try await GameEngine(storage: try await storage(settings), configuration: c, clock: BoardCheckpointTests.clock, logger: logger)
    }

    /// Writes `claims` as another instance would (its own writer id), in batches.
    func write(_ claims: [Claim], to storage: PostgresClaimStorage) async throws {
        for start in stride(from: 0, to: claims.count, by: 5_000) {
            try await storage.append(Array(claims[start..<min(start + 5_000, claims.count)]))
        }
    }

    /// Claims through the engine, as this instance's players would make them: many at once.
    func claim(_ addresses: [IPv4Address], as name: String, on engine: GameEngine) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, address) in addresses.enumerated() {
                if i >= 64 { try await group.next() }
                group.addTask { _ = try await engine.claim(address: address, name: PlayerName(trusted: name)) }
            }
            try await group.waitForAll()
        }
    }

    @Test func checkpointPlusFeedEqualsAFullRebuild() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let dir = try BoardCheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = try await storage(settings)
        // Stored claims end 100 s ago; everything after comes in time order, as live claims do.
        let stored = BoardCheckpointTests.claims(200_000, seed: 11, timeBase: Self.now - 100)
        try await write(stored, to: other)

        let checkpoint = dir + "/a.board"
        let first = try await engine(settings, checkpoint: checkpoint)
        #expect(first.startedFrom == "storage")
        let run = Task { try await first.run() }

        // Before the checkpoint: another instance's claims, and this instance's own.
        let before = BoardCheckpointTests.claims(10_000, seed: 12).enumerated().map { i, c in
            Claim(address: c.address, name: c.name, claimedAt: Self.now - 90 + Int64(i / 1_000), origin: c.origin)
        }
        try await write(before, to: other)
        try await claim((0..<1_000).map { IPv4Address(0x0A00_0000 + UInt32($0)) }, as: "own", on: first)
        // The checkpoint, kept aside: the one written at shutdown would reach further.
        await first.checkpoint()
        let position = first.withBoard { $0.storagePosition }
        try FileManager.default.copyItem(atPath: checkpoint, toPath: dir + "/kept.board")

        // After it: more of this instance's own claims (re-claims of stored addresses too), then
        // another instance's, re-taking some of this instance's and of the stored ones, in the
        // same second.
        try await claim(stored.prefix(2_000).map(\.address), as: "own", on: first)
        try await claim((1_000..<2_000).map { IPv4Address(0x0A00_0000 + UInt32($0)) }, as: "own", on: first)
        let taken = (stored.prefix(4_000).map(\.address) + (500..<1_500).map { IPv4Address(0x0A00_0000 + UInt32($0)) }).map {
            Claim(address: $0, name: PlayerName(trusted: "thief"), claimedAt: Self.now, origin: .unknown)
        }
        try await write(taken, to: other)
        first.close()
        _ = try await run.value

        let replay = try #require(try await other.claims(after: position, generation: try await other.generation()))
        // The thief's rows, and the own ones the thief did not take back (10.0.0.1500–1999).
        #expect(replay.count == taken.count + 500, "rows after the checkpoint: \(replay.count)")

        let resumed = try await engine(settings, checkpoint: dir + "/kept.board")
        #expect(resumed.startedFrom == "checkpoint")
        let rebuilt = try await engine(settings, checkpoint: nil)
        #expect(rebuilt.startedFrom == "storage")
        BoardCheckpointTests.expectSameBoard(resumed, rebuilt, "checkpoint + feed")
        #expect(resumed.withBoard { $0.owner(of: taken[0].address)?.name.value } == "thief")
        #expect(resumed.withBoard { $0.owner(of: IPv4Address(0x0A00_0000 + 1_999))?.name.value } == "own")
        // 10.0.0.0–1999 and 2,000 stored addresses, less what the thief took back.
        #expect(resumed.withBoard { $0.player(PlayerName(trusted: "own"), period: .all)?.addresses } == 1_000)
        // The board is positioned by the feed: what the table holds up to the start's cursor.
        #expect(resumed.withBoard { $0.storagePosition } == (try await other.changeCursor()))
    }

    @Test func damagedForeignOrBypassedCheckpointsAreRebuiltFromTheTable() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let dir = try BoardCheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = try await storage(settings)
        try await write(BoardCheckpointTests.claims(20_000, seed: 21, timeBase: Self.now - 100), to: other)
        let checkpoint = dir + "/a.board"
        let first = try await engine(settings, checkpoint: checkpoint)
        await first.checkpoint()
        let good = try Data(contentsOf: URL(fileURLWithPath: checkpoint))

        // Damaged: one byte flipped in the middle.
        var damaged = good
        damaged[damaged.count / 2] ^= 0x40
        try damaged.write(to: URL(fileURLWithPath: checkpoint))
        #expect(try await engine(settings, checkpoint: checkpoint).startedFrom == "storage")

        // Another database's: same schema, other identity.
        let foreign = try await PostgresTestCluster.freshDatabase()
        try await write(BoardCheckpointTests.claims(5_000, seed: 22), to: try await storage(foreign))
        try good.write(to: URL(fileURLWithPath: checkpoint))
        let elsewhere = try await engine(foreign, checkpoint: checkpoint)
        #expect(elsewhere.startedFrom == "storage")
        #expect(elsewhere.withBoard { $0.addressCount } == (try await storage(foreign).count()))

        // Rows deleted outside ipquest (no seq moves): the trigger draws a new identity, so the
        // checkpoint that still holds them is stale.
        try good.write(to: URL(fileURLWithPath: checkpoint))
        #expect(try await engine(settings, checkpoint: checkpoint).startedFrom == "checkpoint")
        _ = try await PostgresTestCluster.query(settings, "DELETE FROM claims WHERE ip % 2 = 0")
        let afterDelete = try await engine(settings, checkpoint: checkpoint)
        #expect(afterDelete.startedFrom == "storage")
        #expect(afterDelete.withBoard { $0.addressCount } == (try await other.count()))
    }
}
