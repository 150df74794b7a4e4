import Foundation
import IPAddress
import Synchronization
import IPQuestTestSupport
import Testing
@testable import Game
@testable import GameRules

/// Several real `ipquest serve` processes on one PostgreSQL database.
@Suite(.serialized, .tags(.postgres, .processes), .enabled(if: PostgresTestCluster.enabled, "needs IPQUEST_POSTGRES_URL (scripts/with-postgres.sh)"))
struct PostgresServeProcessTests {
    struct Instance: @unchecked Sendable {
        let process: Process
        let port: UInt16
        let log: String
        var client: LoopbackHTTPClient { LoopbackHTTPClient(port: port, timeoutSeconds: 5) }
        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    /// Starts `ipquest serve` on a free port with stderr (the log) going to a file.
    static func launch(_ url: String, directory: String, label: String, config: String? = nil) async throws -> Instance {
        let log = directory + "/\(label).log"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let configArgument = config == nil ? "" : " --config \"$3\""
        process.arguments = ["-c", "exec \"$0\" serve --port 0 --database \"$1\"\(configArgument) 2>>\"$2\"", ServeProcessTests.binary, url, log] + (config.map { [$0] } ?? [])
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = try await onThread { () -> String in
            var text = ""
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !text.contains("\n") {
                let data = out.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text
        }
        guard let portText = text.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines), let port = UInt16(portText) else {
            process.terminate()
            throw LoopbackHTTPClient.Failure.socket("server did not start: \(text) \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return Instance(process: process, port: port, log: log)
    }

    static func stop(_ instance: Instance) async {
        if instance.process.isRunning { kill(instance.process.processIdentifier, SIGTERM) }
        _ = try? await onThread { instance.process.waitUntilExit() }
    }

    static func waitFor(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    @Test func twoInstancesConvergeToTheSameScoreWithinASecond() async throws {
        let dir = try ServeProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = PostgresTestCluster.url(of: try await PostgresTestCluster.freshDatabase())
        let a = try await Self.launch(url, directory: dir, label: "a")
        let b = try await Self.launch(url, directory: dir, label: "b")
        let acknowledged = Atomic<Int>(0)
        // Distinct 127.x sources, alternating between the instances, several names.
        await runOnThreads(8) { worker in
            let client = worker % 2 == 0 ? a.client : b.client
            var i = worker
            while i < 2_400 {
                if let r = try? client.get("/claim?name=p\(i % 5)", source: LoopbackHTTPClient.sourceAddress(i)), r.status == 200 {
                    acknowledged.add(1, ordering: .relaxed)
                }
                i += 8
            }
        }
        let finished = Date()
        #expect(acknowledged.load(ordering: .relaxed) == 2_400)
        func score(_ instance: Instance) -> (etag: String, addresses: String) {
            let etag = (try? instance.client.get("/score"))?.headers["etag"] ?? "a\(instance.port)"
            let health = (try? instance.client.get("/healthz"))?.text ?? ""
            return (etag, health)
        }
        let converged = await Self.waitFor(3) {
            let (x, y) = (score(a), score(b))
            return x.etag == y.etag && x.addresses == y.addresses && x.addresses.contains("\"addresses\":2400")
        }
        let took = Date().timeIntervalSince(finished)
        #expect(converged, "a: \(score(a)) b: \(score(b))")
        #expect(took < 1.0, "converged after \(took) s")
        await Self.stop(a)
        await Self.stop(b)
        #expect(a.process.terminationStatus == 0 && b.process.terminationStatus == 0)
    }

    @Test func killingTheLeaderMovesTheLock() async throws {
        let dir = try ServeProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = PostgresTestCluster.url(of: try await PostgresTestCluster.freshDatabase())
        let a = try await Self.launch(url, directory: dir, label: "a")
        #expect(await Self.waitFor(10) { a.logText.contains("leadership acquired") })
        let b = try await Self.launch(url, directory: dir, label: "b")
        try await Task.sleep(for: .seconds(2))
        #expect(!b.logText.contains("leadership acquired"), "only one leader at a time")
        kill(a.process.processIdentifier, SIGKILL)
        let killed = Date()
        _ = try? await onThread { a.process.waitUntilExit() }
        let moved = await Self.waitFor(10) { b.logText.contains("leadership acquired") }
        #expect(moved, "b log: \(b.logText)")
        #expect(Date().timeIntervalSince(killed) < 5)
        // The survivor still takes claims.
        #expect(try await b.client.get("/claim?name=survivor", source: "127.9.9.9").status == 200)
        await Self.stop(b)
    }

    /// PostgreSQL stops in the middle of a claim storm and comes back: claims answer 503 while it
    /// is away (quickly), and every claim that got a 2xx is in the database afterwards.
    @Test func databaseRestartMidStormLosesNoAcknowledgedClaim() async throws {
        let cluster = try PrivatePostgresCluster()
        defer { cluster.destroy() }
        let dir = try ServeProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = PostgresTestCluster.url(of: cluster.settings) + "&timeout_ms=1000"
        let server = try await Self.launch(url, directory: dir, label: "s")
        let client = server.client
        let acknowledged = Mutex<[String: String]>([:])
        let unavailable = Atomic<Int>(0)
        let slowest503 = Mutex<Double>(0)
        let phase = Atomic<Int>(0) // 0 before the stop, 1 stopped, 2 restarted, 3 done
        let acksAfterRestart = Atomic<Int>(0)
        await runOnThreads(9) { worker in
            if worker == 8 {
                while acknowledged.withLock({ $0.count }) < 1_000 { usleep(1_000) }
                try? cluster.stop()
                phase.store(1, ordering: .sequentiallyConsistent)
                usleep(1_500_000)
                try? cluster.start()
                phase.store(2, ordering: .sequentiallyConsistent)
                let deadline = Date().addingTimeInterval(30)
                while acksAfterRestart.load(ordering: .relaxed) < 500, Date() < deadline { usleep(5_000) }
                phase.store(3, ordering: .sequentiallyConsistent)
                return
            }
            var i = worker
            while phase.load(ordering: .sequentiallyConsistent) < 3, i < 200_000 {
                let source = LoopbackHTTPClient.sourceAddress(i)
                let name = "s\(i % 13)"
                let started = Date()
                if let r = try? client.get("/claim?name=\(name)", source: source) {
                    if r.status == 200 {
                        acknowledged.withLock { $0[source] = name }
                        if phase.load(ordering: .sequentiallyConsistent) == 2 { acksAfterRestart.add(1, ordering: .relaxed) }
                    } else if r.status == 503 {
                        unavailable.add(1, ordering: .relaxed)
                        let took = Date().timeIntervalSince(started)
                        slowest503.withLock { $0 = max($0, took) }
                        usleep(20_000)
                    }
                }
                i += 8
            }
        }
        await Self.stop(server)
        #expect(unavailable.load(ordering: .relaxed) > 0, "claims were refused while the database was down")
        #expect(slowest503.withLock { $0 } < 2.5, "a 503 took \(slowest503.withLock { $0 }) s")
        #expect(acksAfterRestart.load(ordering: .relaxed) >= 500, "claims were accepted again after the restart")
        let storage = try await PostgresClaimStorage(settings: cluster.settings, logger: PostgresTestCluster.logger, leadership: false)
        let stored = Dictionary(uniqueKeysWithValues: try await storage.loadAll().map { ($0.address.description, $0.name.value) })
        let acked = acknowledged.withLock { $0 }
        let lost = acked.filter { stored[$0.key] != $0.value }
        #expect(lost.isEmpty, "lost \(lost.count) of \(acked.count) acknowledged claims")
    }

    /// `kill -9` while a checkpoint is being written every second loses no acknowledged claim,
    /// and the next start (from the checkpoint and the feed) serves the scores a full load gives.
    @Test func killDuringCheckpointWritingLosesNothing() async throws {
        let settings = try await PostgresTestCluster.freshDatabase()
        let url = PostgresTestCluster.url(of: settings)
        let dir = try ServeProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try await PostgresClaimStorage(settings: settings, logger: PostgresTestCluster.logger, leadership: false)
        let seeded = BoardCheckpointTests.claims(100_000, seed: 31, timeBase: Int64(Date().timeIntervalSince1970))
        for start in stride(from: 0, to: seeded.count, by: 5_000) { try await storage.append(Array(seeded[start..<start + 5_000])) }
        let board = dir + "/instance.board"
        try "checkpoint: { interval_seconds: 1, path: \"\(board)\" }\nlocation: { database: \"\" }\n"
            .write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let acknowledged = Mutex<[String: String]>([:])
        for round in 0..<3 {
            let server = try await Self.launch(url, directory: dir, label: "s", config: dir + "/c.yaml")
            let acked = await BoardCheckpointTests.claimThenKillMidCheckpoint(server.process, port: server.port, round: round,
                                                                              until: 300 * (round + 1), after: acknowledged.withLock { $0.count },
                                                                              checkpointTemp: board + ".tmp")
            acknowledged.withLock { $0.merge(acked) { _, new in new } }
            try await onThread { server.process.waitUntilExit() }
            #expect(server.process.terminationReason == .uncaughtSignal)
        }
        let server = try await Self.launch(url, directory: dir, label: "final", config: dir + "/c.yaml")
        #expect(server.logText.contains("board resumed from checkpoint"), "\(server.logText.suffix(2_000))")
        let stored = try await storage.loadAll()
        let owners = Dictionary(uniqueKeysWithValues: stored.map { ($0.address.description, $0.name.value) })
        let lost = acknowledged.withLock { $0 }.filter { owners[$0.key] != $0.value }
        #expect(lost.isEmpty, "lost \(lost.count) acknowledged claims")
        let health = try await server.client.get("/healthz").text
        #expect(health.contains("\"addresses\":\(stored.count)"), "\(health)")
        let served = try await server.client.get("/score").text
        await Self.stop(server)
        // Without a checkpoint: a full load of the same table.
        let full = try await Self.launch(url, directory: dir, label: "full")
        let rebuilt = try await full.client.get("/score").text
        await Self.stop(full)
        let (a, b) = (BoardCheckpointTests.scores(served), BoardCheckpointTests.scores(rebuilt))
        #expect(a != nil && a == b && (a?.count ?? 0) > 10, "\(served.count) vs \(rebuilt.count) bytes")
    }
}
