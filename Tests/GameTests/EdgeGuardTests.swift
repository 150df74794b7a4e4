import Foundation
import Synchronization
import Testing
import IPAddress
import Edge
@testable import Game
@testable import GameRules

/// Real storage, made slow on purpose so requests stay in flight long enough to overload.
struct SlowStorage: ClaimStorage {
    let base: any ClaimStorage
    let delay: Duration
    func loadAll() async throws -> [Claim] { try await base.loadAll() }
    func append(_ claims: [Claim]) async throws {
        try await Task.sleep(for: delay)
        try await base.append(claims)
    }
    func maintain(budget: Int) async throws -> Int { try await base.maintain(budget: budget) }
    func count() async throws -> Int { try await base.count() }
}

/// The hardened edge over real sockets: shedding, connection caps, allowlist, bans, rules.
@Suite(.serialized) struct EdgeGuardTests {
    @Test func overloadIsShedAtOnceAndAdmittedClaimsComplete() async throws {
        let server = try await TestServer.start(configure: { $0.maxInFlightClaims = 4 }, wrapStorage: { SlowStorage(base: $0, delay: .milliseconds(1_500)) })
        defer { server.removeFiles() }
        let client = server.client
        let results = Mutex<[(status: Int, seconds: Double)]>([])
        await runOnThreads(40) { i in
            let started = Date()
            let r = try? client.get("/claim?name=load", source: LoopbackHTTPClient.sourceAddress(i))
            results.withLock { $0.append((r?.status ?? 0, Date().timeIntervalSince(started))) }
        }
        let all = results.withLock { $0 }
        let admitted = all.filter { $0.status == 200 }
        let shed = all.filter { $0.status == 503 }
        #expect(admitted.count + shed.count == 40)
        #expect(admitted.count >= 4, "the limit is admitted")
        #expect(shed.count >= 20, "the excess is shed: \(shed.count) of 40")
        // Shed requests do not wait for the slow ones.
        #expect(shed.allSatisfy { $0.seconds < 1.0 }, "slowest 503 took \(shed.map(\.seconds).max() ?? 0) s")
        #expect(server.guards.limits.claims.refusedCount == shed.count)
        // Reads have their own budget and are not starved by the claims.
        #expect(try await client.get("/healthz").status == 200)
        await server.stop()
    }

    /// A shed request is an ordinary answer: the connection stays open and serves the next one.
    @Test func shedRequestsKeepTheConnection() async throws {
        let server = try await TestServer.start(configure: { $0.maxInFlightClaims = 1 }, wrapStorage: { SlowStorage(base: $0, delay: .milliseconds(1_500)) })
        defer { server.removeFiles() }
        let client = server.client
        async let slow = client.get("/claim?name=first", source: "127.8.0.1")
        #expect(await eventually { server.guards.limits.claims.inFlight == 1 }, "the one claim slot is taken")
        let raw = try await onThread { () throws -> String in
            let fd = try client.connectSocket(source: "127.8.0.2")
            defer { close(fd) }
            try client.sendAll(fd, Array("GET /claim?name=second HTTP/1.1\r\nHost: x\r\n\r\nGET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            return String(decoding: client.readToEnd(fd), as: UTF8.self)
        }
        #expect(raw.hasPrefix("HTTP/1.1 503"), "\(raw)")
        #expect(raw.contains("retry-after: 1") || raw.contains("Retry-After: 1"))
        #expect(raw.contains("HTTP/1.1 200") && raw.hasSuffix("127.8.0.2\n"), "\(raw)")
        #expect(try await slow.status == 200)
        await server.stop()
    }

    @Test func connectionCapClosesNewConnectionsAndRefusesKeepAliveNearIt() async throws {
        let server = try await TestServer.start { $0.maxConnections = 3 }
        defer { server.removeFiles() }
        let c = server.client
        // Keep-alive is refused once the share of the cap is reached (90% of 3 = 2 open).
        let idle1 = try c.connectSocket(source: "127.6.0.1")
        defer { close(idle1) }
        #expect(await eventually { server.guards.connections.openConnections == 1 })
        let keepAlive = try await onThread { () throws -> String in
            let fd = try c.connectSocket(source: "127.6.0.2")
            defer { close(fd) }
            try c.sendAll(fd, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            return String(decoding: c.readToEnd(fd), as: UTF8.self)
        }
        #expect(keepAlive.lowercased().contains("connection: close"))
        let idle2 = try c.connectSocket(source: "127.6.0.3")
        let idle3 = try c.connectSocket(source: "127.6.0.4")
        #expect(await eventually { server.guards.connections.openConnections == 3 })
        // The fourth is closed at once, before any byte is read.
        await #expect(throws: (any Error).self) { try await c.get("/healthz", source: "127.6.0.5") }
        close(idle2)
        close(idle3)
        #expect(await eventually { server.guards.connections.openConnections == 1 }, "the two closed connections are counted out")
        #expect(try await c.get("/healthz", source: "127.6.0.5").status == 200)
        await server.stop()
    }

    @Test func upstreamAllowlistClosesOtherPeersAtAccept() async throws {
        let server = try await TestServer.start { $0.upstreamAllowlist = [IPPrefix("127.0.0.1/32")!] }
        defer { server.removeFiles() }
        let c = server.client
        #expect(try await c.get("/ip", source: "127.0.0.1").text == "127.0.0.1\n")
        await #expect(throws: (any Error).self) { try await c.get("/ip", source: "127.7.0.1") }
        // Swapped at run time (as a refresh or reload does).
        server.guards.connections.replaceAllowlist(PrefixSet([IPPrefix("127.7.0.0/16")!]))
        #expect(try await c.get("/ip", source: "127.7.0.1").status == 200)
        await #expect(throws: (any Error).self) { try await c.get("/ip", source: "127.0.0.1") }
        await server.stop()
    }

    /// The allowlist from a published list (a file here; URLs go through the same RangeSet,
    /// tested in CloudRangesTests): a changed list is swapped in by the refresher, and the
    /// configured CIDRs stay.
    @Test func upstreamAllowlistFromAPublishedListIsRefreshed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-allow-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "# our CDN\n127.77.0.0/16\n".write(toFile: dir + "/cdn.txt", atomically: true, encoding: .utf8)
        var c = ServeConfiguration()
        try c.apply(yaml: "upstream_allowlist: [127.0.0.1/32, \"cdn=\(dir)/cdn.txt\"]\nupstream_allowlist_refresh_seconds: 1\n")
        let server = try await TestServer.start(configure: {
            $0.upstreamAllowlist = c.upstreamAllowlist
            $0.upstreamAllowlistSources = c.upstreamAllowlistSources
            $0.upstreamAllowlistRefreshSeconds = 1
        }, directory: dir)
        let client = server.client
        #expect(try await client.get("/ip", source: "127.77.0.1").text == "127.77.0.1\n")
        #expect(try await client.get("/ip", source: "127.0.0.1").status == 200)
        await #expect(throws: (any Error).self) { try await client.get("/ip", source: "127.78.0.1") }
        // The CDN publishes a new list: picked up without a restart.
        try "127.78.0.0/16\n".write(toFile: dir + "/cdn.txt", atomically: true, encoding: .utf8)
        var admitted = false
        let deadline = ContinuousClock.now + .seconds(10)
        while !admitted, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            admitted = (try? await client.get("/ip", source: "127.78.0.1").status) == 200
        }
        #expect(admitted)
        await #expect(throws: (any Error).self) { try await client.get("/ip", source: "127.77.0.1") }
        #expect(try await client.get("/ip", source: "127.0.0.1").status == 200)
        // A list that turns unreadable keeps the last good ranges.
        try FileManager.default.removeItem(atPath: dir + "/cdn.txt")
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(try await client.get("/ip", source: "127.78.0.2").status == 200)
        await server.stop()
    }

    @Test func networksThatKeepHittingTheLimitAreBannedAtAccept() async throws {
        let server = try await TestServer.start {
            $0.requestsBurst = 5
            $0.requestsPerSecond = 0.01
            $0.strikesBeforeBan = 3
            $0.banSeconds = 60
        }
        defer { server.removeFiles() }
        let c = server.client
        for i in 0..<5 { #expect(try await c.get("/ip", source: "127.8.8.\(i + 1)").status == 200) }
        var statuses: [Int] = []
        for i in 0..<4 { statuses.append(try await c.get("/api/recent", source: "127.8.8.\(i + 10)").status) }
        #expect(statuses == [429, 429, 429, 429])
        #expect(server.guards.connections.bans.isBanned(NetworkKey(IPAddress("127.8.8.99")!)))
        await #expect(throws: (any Error).self) { try await c.get("/ip", source: "127.8.8.99") }
        #expect(try await c.get("/ip", source: "127.8.9.1").status == 200, "other networks are unaffected")
        await server.stop()
    }

    @Test func userAgentAndPathRulesReloadWithoutRestart() async throws {
        let server = try await TestServer.start {
            $0.bannedUserAgents = ["BadBot/1.0"]
            $0.bannedUserAgentPatterns = ["python-requests/.*"]
            $0.bannedPaths = ["/wp-admin*", "/score/month"]
        }
        defer { server.removeFiles() }
        let c = server.client
        #expect(try await c.get("/ip", headers: [("User-Agent", "BadBot/1.0")]).status == 403)
        #expect(try await c.get("/ip", headers: [("User-Agent", "Python-Requests/2.31")]).status == 403)
        #expect(try await c.get("/ip", headers: [("User-Agent", "GoodBot/1.0")]).status == 200)
        #expect(try await c.get("/wp-admin/setup.php").status == 403)
        #expect(try await c.get("/score/month").status == 403)
        #expect(try await c.get("/score/week").status == 200)
        var next = ServeConfiguration()
        next.bannedUserAgents = ["GoodBot/1.0"]
        try server.guards.reload(next)
        #expect(try await c.get("/ip", headers: [("User-Agent", "BadBot/1.0")]).status == 200)
        #expect(try await c.get("/ip", headers: [("User-Agent", "GoodBot/1.0")]).status == 403)
        #expect(try await c.get("/score/month").status == 200)
        await server.stop()
    }

    @Test func requestIDsAndRequestsPerConnection() async throws {
        let server = try await TestServer.start { $0.maxRequestsPerConnection = 2 }
        defer { server.removeFiles() }
        let c = server.client
        let echoed = try await c.get("/ip", headers: [("X-Request-ID", "abc-123")])
        #expect(echoed.headers["x-request-id"] == "abc-123")
        let generated = try await c.get("/ip", headers: [("X-Request-ID", "no/slashes or spaces!")])
        #expect(generated.headers["x-request-id"]?.count == 16)
        // Three pipelined requests on one connection: two answers, the second says close.
        let raw = try await onThread { () throws -> String in
            let fd = try c.connectSocket(source: "127.9.0.1")
            defer { close(fd) }
            try c.sendAll(fd, Array(String(repeating: "GET /ip HTTP/1.1\r\nHost: x\r\n\r\n", count: 3).utf8))
            return String(decoding: c.readToEnd(fd), as: UTF8.self)
        }
        #expect(raw.components(separatedBy: "HTTP/1.1 200").count - 1 == 2)
        #expect(raw.lowercased().components(separatedBy: "connection: close").count - 1 == 1)
        await server.stop()
    }

    @Test func oversizedHeadsGet431AndOversizedBodies413() async throws {
        let server = try await TestServer.start { $0.maxHeaderBytes = 4_096; $0.maxHeaderFields = 20; $0.maxBodyBytes = 1_000 }
        defer { server.removeFiles() }
        let c = server.client
        func send(_ text: String) async throws -> LoopbackHTTPClient.Response {
            try await onThread { try c.exchange(source: "127.9.1.1", raw: Array(text.utf8)) }
        }
        let bigField = try await send("GET /ip HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 5_000))\r\n\r\n")
        #expect(bigField.status == 431 && bigField.text.contains("header fields too large"))
        #expect(bigField.headers["connection"] == "close")
        let manyFields = try await send("GET /ip HTTP/1.1\r\nHost: x\r\n" + (0..<30).map { "X-\($0): 1\r\n" }.joined() + "\r\n")
        #expect(manyFields.status == 431)
        let bigBody = try await send("POST /claim HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "b", count: 5_000))
        #expect(bigBody.status == 413 && bigBody.text.contains("5000 bytes, at most 1000"))
        // Within the limits the same requests are ordinary ones.
        #expect(try await send("GET /ip HTTP/1.1\r\nHost: x\r\nX-Small: a\r\nConnection: close\r\n\r\n").status == 200)
        let smallBody = try await send("POST /claim HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789")
        #expect(smallBody.status == 400 && smallBody.text.contains("missing name"))
        await server.stop()
    }

    @Test func slowHeaderClientsAreCutAndOthersServed() async throws {
        let server = try await TestServer.start { $0.idleTimeoutSeconds = 1 }
        defer { server.removeFiles() }
        let c = server.client
        let slow = 200
        var fds: [Int32] = []
        for i in 0..<slow {
            let fd = try c.connectSocket(source: "127.10.\(i / 250).\(i % 250 + 1)")
            try c.sendAll(fd, Array("GET /ip HTTP/1.1\r\n".utf8)) // and never finish the head
            fds.append(fd)
        }
        defer { fds.forEach { close($0) } }
        // A normal client is served while they hang.
        #expect(try await c.get("/ip", source: "127.11.0.1").status == 200)
        // Trickle one more byte on each, then wait past the deadline: all are closed.
        for fd in fds { try? c.sendAll(fd, Array("X".utf8)) }
        try await Task.sleep(for: .milliseconds(2_500))
        let opened = fds
        let closedCount = try await onThread { () -> Int in
            opened.filter { fd in
                var byte: UInt8 = 0
                let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
                return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            }.count
        }
        #expect(closedCount == slow)
        await server.stop()
    }
}
