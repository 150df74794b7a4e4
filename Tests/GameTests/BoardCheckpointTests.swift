import Foundation
import Logging
import Synchronization
import IPQuestTestSupport
import Testing
import IPAddress
@testable import Game
@testable import GameRules

/// Issue 24: a start resumes the board from a checkpoint plus the claims committed after it,
/// and that is exactly the board a full rebuild from storage gives; a damaged, cut-short or
/// stale checkpoint is detected and rebuilt from storage, never trusted.
@Suite(.serialized, .tags(.slow)) struct BoardCheckpointTests {
    static let logger: Logger = {
        var l = Logger(label: "checkpoint-test")
        l.logLevel = .critical
        return l
    }()

    /// A fixed clock, so the two boards compared see the same windows.
    static let now: Int64 = 1_790_000_000
    static let clock = WallClock { (now, 0) }

    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-ckpt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Claims shaped like the game: runs inside /24s, a few players holding most, times over
    /// 60 days (so every window has some in and some out), a few origins and data centers.
    static func claims(_ count: Int, seed: UInt64, names: Int = 300, timeBase: Int64 = now) -> [Claim] {
        var rng = SplitMix64(seed: seed)
        var out: [Claim] = []
        out.reserveCapacity(count)
        var ip = UInt32(rng.next() % (1 << 24)) << 8
        while out.count < count {
            if rng.next() % 8 == 0 { ip = UInt32(truncatingIfNeeded: rng.next()) & 0xFFFF_FF00 }
            let run = Int(rng.next() % 64) + 1
            for _ in 0..<run where out.count < count {
                ip &+= 1
                let skew = Double(rng.next() % 1_000_000) / 1_000_000
                let player = Int(pow(skew, 3) * Double(names))
                let age = Int64(rng.next() % (60 * 86_400))
                let origin: ClaimOrigin
                switch rng.next() % 5 {
                case 0: origin = ClaimOrigin(country: "DE", asn: 3320, provider: nil)
                case 1: origin = ClaimOrigin(country: "US", asn: 16509, provider: "aws")
                case 2: origin = ClaimOrigin(country: "FR", asn: UInt32(rng.next() % 50 + 1), provider: nil)
                default: origin = .unknown
                }
                out.append(Claim(address: IPv4Address(ip), name: PlayerName(trusted: "p\(player)"), claimedAt: timeBase - age, origin: origin))
            }
        }
        return out
    }



    static func engine(_ storage: SQLiteClaimStorage, checkpoint: String?) async throws -> GameEngine {
        var c = GameEngine.Configuration()
        c.checkpointPath = checkpoint
        return try await GameEngine(storage: storage, configuration: c, clock: clock, logger: logger)
    }

    /// Every view the game serves, compared between two boards (a difference is reported by
    /// its first element, not the whole view).
    static func expectSameBoard(_ a: GameEngine, _ b: GameEngine, _ label: String) {
        let (left, right) = (a.withBoard { $0 }, b.withBoard { $0 })
        func same<T: Equatable>(_ l: [T], _ r: [T], _ what: String) {
            guard l != r else { return }
            let first = zip(l, r).first { $0 != $1 }.map { "\($0.0) vs \($0.1)" } ?? "lengths \(l.count) vs \(r.count)"
            Issue.record("\(label): \(what) differ (\(l.count) vs \(r.count)); first: \(first.prefix(400))")
        }
        #expect(left.addressCount == right.addressCount, "\(label): addresses")
        same(left.allClaims(), right.allClaims(), "owners")
        for period in Period.allCases {
            same(left.leaderboard(period), right.leaderboard(period), "leaderboard \(period)")
            same(left.leaderboard(period, residential: true), right.leaderboard(period, residential: true), "residential \(period)")
            same(left.blocks(period), right.blocks(period), "blocks \(period)")
            for name in ["p0", "p1", "p7", "p299", "thief"] {
                same([left.player(PlayerName(trusted: name), period: period)], [right.player(PlayerName(trusted: name), period: period)], "\(name) \(period)")
            }
        }
        same(left.countries(), right.countries(), "countries")
        same(left.autonomousSystems(limit: 1_000), right.autonomousSystems(limit: 1_000), "AS")
    }

    @Test func checkpointPlusJournalEqualsAFullRebuild() async throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try SQLiteClaimStorage(path: dir + "/game.sqlite", durability: .normal)
        // Stored claims end 100 s ago; the ones after the checkpoint come later, in time order,
        // as live claims do.
        _ = try await storage.importClaims(Self.claims(200_000, seed: 1, timeBase: Self.now - 100))
        let checkpoint = dir + "/game.sqlite.board"

        // A start from storage, then a checkpoint of that board.
        let first = try await Self.engine(storage, checkpoint: checkpoint)
        #expect(first.startedFrom == "storage")
        await first.checkpoint()
        #expect(FileManager.default.fileExists(atPath: checkpoint))

        // Claims after the checkpoint: new addresses, and re-claims of checkpointed ones by
        // other players (including the same second), straight into the journal.
        var later = Self.claims(20_000, seed: 2).enumerated().map { i, c in
            Claim(address: c.address, name: c.name, claimedAt: Self.now - 90 + Int64(i / 1_000), origin: c.origin)
        }
        let taken = Self.claims(200_000, seed: 1, timeBase: Self.now - 100).prefix(5_000).map {
            Claim(address: $0.address, name: PlayerName(trusted: "thief"), claimedAt: Self.now - 5, origin: .unknown)
        }
        later += taken
        for chunk in stride(from: 0, to: later.count, by: 1_000) {
            _ = try await storage.appendReturningPosition(Array(later[chunk..<min(chunk + 1_000, later.count)]))
        }
        // The fold may not touch what the checkpoint lacks.
        while try await storage.maintain(budget: 10_000) > 0 {}
        #expect(try await storage.claims(after: first.withBoard { $0.storagePosition }, generation: storage.generation())?.count == later.count)

        let resumed = try await Self.engine(storage, checkpoint: checkpoint)
        #expect(resumed.startedFrom == "checkpoint")
        let rebuilt = try await Self.engine(storage, checkpoint: nil)
        #expect(rebuilt.startedFrom == "storage")
        Self.expectSameBoard(resumed, rebuilt, "checkpoint + journal")
        #expect(resumed.withBoard { $0.owner(of: taken[0].address)?.name.value } == "thief")
    }

    @Test func damagedCutShortOrStaleCheckpointsAreRebuiltFromStorage() async throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try SQLiteClaimStorage(path: dir + "/game.sqlite", durability: .normal)
        _ = try await storage.importClaims(Self.claims(50_000, seed: 3))
        let checkpoint = dir + "/game.sqlite.board"
        await (try await Self.engine(storage, checkpoint: checkpoint)).checkpoint()
        let good = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let reference = try await Self.engine(storage, checkpoint: nil)

        // One bit flipped anywhere: refused by the hash.
        var rng = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 24)
        print("BoardCheckpointTests corruption seed: \(rng.seed) (FUZZ_SEED to repeat)")
        for _ in 0..<8 {
            var bad = good
            let at = Int(rng.next() % UInt64(bad.count))
            bad[at] ^= UInt8(1 << (rng.next() % 8))
            try bad.write(to: URL(fileURLWithPath: checkpoint))
            #expect(throws: BoardCheckpoint.Refused.self) { try BoardCheckpoint.read(from: checkpoint) }
            let engine = try await Self.engine(storage, checkpoint: checkpoint)
            #expect(engine.startedFrom == "storage")
            Self.expectSameBoard(engine, reference, "flipped byte \(at)")
        }
        // Cut short (a crash while an older build wrote in place), and empty.
        for length in [good.count / 2, 12, 0] {
            try good.prefix(length).write(to: URL(fileURLWithPath: checkpoint))
            #expect(try await Self.engine(storage, checkpoint: checkpoint).startedFrom == "storage", "\(length) bytes")
        }
        // Stale: a bulk import after the checkpoint changes the generation.
        try good.write(to: URL(fileURLWithPath: checkpoint))
        #expect(try await Self.engine(storage, checkpoint: checkpoint).startedFrom == "checkpoint")
        _ = try await storage.importClaims([Claim(address: IPv4Address("9.9.9.9")!, name: PlayerName(trusted: "imported"), claimedAt: Self.now - 1)])
        let afterImport = try await Self.engine(storage, checkpoint: checkpoint)
        #expect(afterImport.startedFrom == "storage")
        #expect(afterImport.withBoard { $0.owner(of: IPv4Address("9.9.9.9")!)?.name.value } == "imported")
    }

    /// A checkpoint whose journal was folded past it (the fold runs ahead when no checkpoint
    /// was durable yet) cannot be resumed: detected through `folded_through`.
    @Test func aCheckpointOlderThanTheFoldIsStale() async throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try SQLiteClaimStorage(path: dir + "/game.sqlite", durability: .normal)
        _ = try await storage.appendReturningPosition(Self.claims(1_000, seed: 5))
        let checkpoint = dir + "/game.sqlite.board"
        await (try await Self.engine(storage, checkpoint: checkpoint)).checkpoint()
        _ = try await storage.appendReturningPosition(Self.claims(1_000, seed: 6))
        storage.allowFold(through: .max)
        while try await storage.maintain(budget: 10_000) > 0 {}
        let engine = try await Self.engine(storage, checkpoint: checkpoint)
        #expect(engine.startedFrom == "storage")
        #expect(engine.withBoard { $0.addressCount } == Set((Self.claims(1_000, seed: 5) + Self.claims(1_000, seed: 6)).map(\.address)).count)
    }

    /// A re-claim war: the same addresses claimed over and over must not grow the board.
    @Test func reclaimsDoNotGrowTheLog() {
        var board = Scoreboard()
        let addresses = (0..<1_000).map { IPv4Address(UInt32(0x0A00_0000) + UInt32($0)) }
        var time = Self.now
        for round in 0..<400 {
            time += 1
            for (i, address) in addresses.enumerated() {
                board.apply(address: address, name: PlayerName(trusted: "w\((round + i) % 3)"), at: time)
            }
            board.advance(to: time)
        }
        #expect(board.addressCount == 1_000)
        #expect(board.logCount <= 2 * 1_000 + Scoreboard.logSlack + 1_000, "log holds \(board.logCount) entries for 1,000 addresses")
        // The counts are still right: every address counted once in every window.
        for period in Period.allCases {
            #expect(board.leaderboard(period).reduce(0) { $0 + $1.addresses } == 1_000, "\(period)")
        }
    }

    /// `kill -9` at any moment — including while a checkpoint is being written every second —
    /// loses no acknowledged claim, and the next start shows them all.
    @Test func killDuringCheckpointWritingLosesNothing() async throws {
        let dir = try ServeProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/game.sqlite"
        _ = try await SQLiteClaimStorage(path: db).importClaims(Self.claims(100_000, seed: 7, timeBase: Int64(Date().timeIntervalSince1970)))
        try "checkpoint: { interval_seconds: 1 }\nlocation: { database: \"\" }\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let acknowledged = Mutex<[String: String]>([:])
        for round in 0..<3 {
            let server = try await ServeProcessTests.launchAsync(["serve", "--port", "0", "--database", db, "--durability", "normal", "--config", dir + "/c.yaml"])
            let acked = await Self.claimThenKillMidCheckpoint(server.process, port: server.port, round: round,
                                                              until: 400 * (round + 1), after: acknowledged.withLock { $0.count },
                                                              checkpointTemp: db + ".board.tmp")
            acknowledged.withLock { $0.merge(acked) { _, new in new } }
            try await onThread { server.process.waitUntilExit() }
            #expect(server.process.terminationReason == .uncaughtSignal)
        }
        // The last start: from its checkpoint (or a rebuild), every acknowledged claim is there,
        // and the scores equal a full rebuild of the same file.
        let server = try await ServeProcessTests.launchAsync(["serve", "--port", "0", "--database", db, "--config", dir + "/c.yaml"])
        let client = LoopbackHTTPClient(port: server.port)
        let stored = try await SQLiteClaimStorage(path: db).loadAll()
        let owners = Dictionary(uniqueKeysWithValues: stored.map { ($0.address.description, $0.name.value) })
        let lost = acknowledged.withLock { $0 }.filter { owners[$0.key] != $0.value }
        #expect(lost.isEmpty, "lost \(lost.count) acknowledged claims")
        let health = try await client.get("/healthz").text
        #expect(health.contains("\"addresses\":\(stored.count)"), "\(health)")
        let served = try await client.get("/score").text
        kill(server.process.processIdentifier, SIGTERM)
        try await onThread { server.process.waitUntilExit() }
        // The same file with checkpoints off: a full rebuild.
        try "checkpoint: { interval_seconds: 0 }\nlocation: { database: \"\" }\n".write(toFile: dir + "/off.yaml", atomically: true, encoding: .utf8)
        let full = try await ServeProcessTests.launchAsync(["serve", "--port", "0", "--database", db, "--config", dir + "/off.yaml"])
        let rebuilt = try await LoopbackHTTPClient(port: full.port).get("/score").text
        // `/score` is {"now": [..], "score": {...}}: the scores must be equal, the clock differs.
        let (a, b) = (Self.scores(served), Self.scores(rebuilt))
        #expect(a != nil && a == b && (a?.count ?? 0) > 10, "\(served.count) vs \(rebuilt.count) bytes")
        kill(full.process.processIdentifier, SIGTERM)
        try await onThread { full.process.waitUntilExit() }
    }

    /// Claims from four threads (round `round`'s names and addresses) until `until` claims are
    /// acknowledged counting the `after` of earlier rounds, then, once `checkpointTemp` shows a
    /// checkpoint being written, kills the server with SIGKILL. Returns this round's
    /// acknowledged claims (address → name).
    static func claimThenKillMidCheckpoint(_ process: Process, port: UInt16, round: Int, until: Int, after: Int,
                                           checkpointTemp: String) async -> [String: String] {
        let client = LoopbackHTTPClient(port: port, timeoutSeconds: 5)
        let acknowledged = Mutex<[String: String]>([:])
        let killed = Atomic<Bool>(false)
        await runOnThreads(5) { worker in
            if worker == 4 {
                // Kill once enough were acknowledged and a checkpoint is (likely) being written.
                _ = eventuallyOnThread(within: 60) { after + acknowledged.withLock { $0.count } >= until }
                _ = eventuallyOnThread(within: 3) { FileManager.default.fileExists(atPath: checkpointTemp) }
                kill(process.processIdentifier, SIGKILL)
                killed.store(true, ordering: .sequentiallyConsistent)
                return
            }
            var i = worker + round * 100_000
            while !killed.load(ordering: .sequentiallyConsistent), i < (round + 1) * 100_000 {
                let source = LoopbackHTTPClient.sourceAddress(i)
                let name = "r\(round)w\(worker)"
                if let r = try? client.get("/claim?name=\(name)", source: source), r.status == 200 {
                    acknowledged.withLock { $0[source] = name }
                }
                i += 4
            }
        }
        return acknowledged.withLock { $0 }
    }

    /// The `score` object of a `/score` body (`{"now": …, "score": {…}}`): equal scores, whatever the clock.
    static func scores(_ text: String) -> NSDictionary? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["score"] as? NSDictionary
    }
}
