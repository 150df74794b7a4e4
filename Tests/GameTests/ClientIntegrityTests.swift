import Foundation
import Testing
import IPAddress
import Edge
@testable import Game
@testable import GameRules

/// Issue 20 over real sockets: the client address cannot be forged behind a trusted proxy,
/// no client can get others blocked, and the front end answers nothing the decoder refused.
/// Here 127.0.0.1 plays the trusted proxy; clients come from other 127.x addresses.
@Suite(.serialized) struct ClientIntegrityTests {
    static func claimed(_ server: TestServer) -> [String: String] {
        var out: [String: String] = [:]
        for claim in server.engine.withBoard({ $0.allClaims() }) { out["\(claim.address)"] = claim.name.value }
        return out
    }

    /// A marker claim from another address: once it is answered, every claim submitted before
    /// it has been decided (one writer, in order), so absence can be asserted.
    static func settle(_ server: TestServer, _ source: String) async throws {
        #expect(try await server.client.get("/claim?name=marker", source: source).status == 200)
    }

    static func proxied(_ configure: @escaping (inout ServeConfiguration) -> Void = { _ in }) async throws -> TestServer {
        try await TestServer.start {
            $0.trustedProxies = [try! IPPrefix(parsing: "127.0.0.1/32")]
            configure(&$0)
        }
    }

    @Test func onlyTheConfiguredHeaderNamesTheClient() async throws {
        let server = try await Self.proxied()
        defer { server.removeFiles() }
        let c = server.client
        // What nginx sends for a client at 127.9.0.5 that added its own Forwarded and X-Real-IP.
        let spoofed = [("Forwarded", "for=9.9.9.9"), ("X-Real-IP", "9.9.9.8"), ("X-Forwarded-For", "9.9.9.7, 127.9.0.5")]
        let r = try await c.get("/claim?name=honest", headers: spoofed + [("Accept", "text/plain")])
        #expect(r.status == 200 && r.text.contains("127.9.0.5"), "\(r.status) \(r.text)")
        #expect(try await c.get("/ip", headers: spoofed).text == "127.9.0.5\n")
        #expect(try await c.get("/api/ip?x", headers: spoofed).text.contains("\"127.9.0.5\""))
        let owners = Self.claimed(server)
        #expect(owners["127.9.0.5"] == "honest" && owners["9.9.9.9"] == nil && owners["9.9.9.7"] == nil)
        await server.stop()
    }

    @Test func unreadableChainsClaimNothingAndNeverBanTheProxy() async throws {
        let server = try await Self.proxied {
            $0.realIPHeader = .forwarded
            $0.requestsBurst = 5
            $0.requestsPerSecond = 0.01
            $0.strikesBeforeBan = 2
        }
        defer { server.removeFiles() }
        let c = server.client
        for value in ["for=unknown", "for=_hidden", "proto=http", "for=127.0.0.1"] {
            let r = try await c.get("/claim?name=ghost", headers: [("Forwarded", value)])
            #expect(r.status == 400 && r.text.contains("cannot tell who sent this request"), "\(value): \(r.status) \(r.text)")
            #expect(try await c.get("/claim/ghost", headers: [("Forwarded", value)]).status == 400)
        }
        // Many more unattributed requests than the bucket and the strikes allow: they key no limit.
        for _ in 0..<40 { _ = try await c.get("/healthz", headers: [("Forwarded", "for=unknown")]) }
        #expect(!server.guards.limits.isBanned(IPAddress("127.0.0.1")!))
        let other = try await c.get("/claim?name=real", headers: [("Forwarded", "for=127.9.1.1")])
        #expect(other.status == 200, "a client behind the same proxy is still served")
        try await Self.settle(server, "127.9.2.2")
        #expect(!Self.claimed(server).values.contains("ghost"))
        #expect(Self.claimed(server)["127.0.0.1"] == nil)
        await server.stop()
    }

    @Test func bansAndLimitsFollowTheClientBehindTheProxy() async throws {
        let server = try await Self.proxied {
            $0.requestsBurst = 5
            $0.requestsPerSecond = 0.01
            $0.strikesBeforeBan = 2
        }
        defer { server.removeFiles() }
        let c = server.client
        let flooder = [("X-Forwarded-For", "127.10.0.1")]
        var statuses: [Int] = []
        for _ in 0..<10 { statuses.append(try await c.get("/healthz", headers: flooder).status) }
        #expect(statuses.prefix(5).allSatisfy { $0 == 200 } && statuses.contains(429), "\(statuses)")
        #expect(server.guards.limits.isBanned(IPAddress("127.10.0.1")!))
        // Banned per request although it arrives through the proxy's (never banned) connection.
        let banned = try await c.get("/healthz", headers: flooder)
        #expect(banned.status == 403 && banned.text.contains("banned"), "\(banned.status) \(banned.text)")
        #expect(try await c.get("/ip", headers: [("X-Forwarded-For", "127.10.0.77")]).status == 403, "the whole /24")
        #expect(!server.guards.limits.isBanned(IPAddress("127.0.0.1")!))
        #expect(try await c.get("/ip", headers: [("X-Forwarded-For", "127.11.0.1")]).text == "127.11.0.1\n")
        await server.stop()
    }

    @Test func pathSpellingsDoNotSlipPastPathBans() async throws {
        let server = try await TestServer.start { $0.bannedPaths = ["/claim*", "/api/ip"] }
        defer { server.removeFiles() }
        let c = server.client
        for path in ["/claim?name=x", "//claim?name=x", "//claim/x", "/claim/", "/./claim?name=x", "/%63laim?name=x"] {
            #expect(try await c.get(path, source: "127.12.0.1").status == 403, "\(path)")
        }
        for path in ["//api/ip", "/api//ip", "/api/ip/"] {
            #expect(try await c.get(path, source: "127.12.0.1").status == 403, "\(path)")
        }
        #expect(Self.claimed(server).isEmpty)
        await server.stop()
    }

    @Test func aHeadTheDecoderRefusesEndsTheConnection() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let c = server.client
        for field in ["Content-Length : 28", "Transfer-Encoding : chunked", "NoColon"] {
            let raw = "POST /x HTTP/1.1\r\nHost: a\r\n\(field)\r\n\r\nGET /ip HTTP/1.1\r\nHost: a\r\n\r\nGET /claim?name=smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
            let answer = try await onThread { () throws -> String in
                let fd = try c.connectSocket(source: "127.13.0.1")
                defer { close(fd) }
                try c.sendAll(fd, Array(raw.utf8))
                return String(decoding: c.readToEnd(fd), as: UTF8.self)
            }
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(field): \(answer)")
            #expect(answer.components(separatedBy: "HTTP/1.1").count == 2, "one answer only: \(answer)")
        }
        try await Self.settle(server, "127.13.0.2")
        #expect(Self.claimed(server)["127.13.0.1"] == nil, "the smuggled claim was not stored")
        await server.stop()
    }

    @Test func oneNetworkCannotHoldEveryConnection() async throws {
        let server = try await TestServer.start {
            $0.maxConnectionsPerNetwork = 3
            $0.maxConnections = 20
        }
        defer { server.removeFiles() }
        let c = server.client
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for i in 1...3 {
            let fd = try c.connectSocket(source: "127.14.0.\(i)")
            try c.sendAll(fd, Array("GET /ip HTTP/1.1\r\nHo".utf8)) // a partial head, held open
            held.append(fd)
        }
        _ = await eventually { server.guards.connections.openConnections(of: IPAddress("127.14.0.1")!) == 3 }
        // A fourth from the same /24 is closed at accept, before a byte is read.
        let refused = try await onThread { () throws -> [UInt8] in
            let fd = try c.connectSocket(source: "127.14.0.9")
            defer { close(fd) }
            try? c.sendAll(fd, Array("GET /ip HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            return c.readToEnd(fd)
        }
        #expect(refused.isEmpty)
        #expect(try await c.get("/ip", source: "127.15.0.1").status == 200, "another network is served")
        await server.stop()
    }

    @Test func aConnectionThatNeverSendsAHeadIsClosedEarly() async throws {
        let server = try await TestServer.start {
            $0.firstHeadTimeoutSeconds = 1
            $0.idleTimeoutSeconds = 30
        }
        defer { server.removeFiles() }
        let c = server.client
        let started = ContinuousClock.now
        let closedBy = try await onThread { () throws -> [UInt8] in
            let fd = try c.connectSocket(source: "127.16.0.1")
            defer { close(fd) }
            try c.sendAll(fd, Array("GET /ip HTTP/1.1\r\n".utf8)) // and then nothing
            return c.readToEnd(fd)
        }
        let waited = ContinuousClock.now - started
        #expect(closedBy.isEmpty)
        #expect(waited < .seconds(8), "closed by the first-head deadline, not the 30 s idle timeout (\(waited))")
        await server.stop()
    }

    /// A 431 used to be lost to a reset when the client was still sending: the connection was
    /// closed with unread input. Now the answer is written, the write side shut, and the rest drained.
    @Test func oversizedHeadsGetTheirAnswerBeforeTheClose() async throws {
        let server = try await TestServer.start { $0.maxHeaderBytes = 1_024 }
        defer { server.removeFiles() }
        let c = server.client
        for round in 0..<5 {
            let answer = try await onThread { () throws -> String in
                let fd = try c.connectSocket(source: "127.17.0.\(round + 1)")
                defer { close(fd) }
                let head = "GET /ip HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 8_192) + "\r\n"
                try c.sendAll(fd, Array(head.utf8))
                // The client goes on sending (more fields) while the server has already answered.
                for _ in 0..<16 { try? c.sendAll(fd, Array(("X-More: " + String(repeating: "b", count: 4_000) + "\r\n").utf8)) }
                return String(decoding: c.readToEnd(fd), as: UTF8.self)
            }
            #expect(answer.hasPrefix("HTTP/1.1 431"), "round \(round): \(answer.prefix(80))")
        }
        await server.stop()
    }

    /// HTTP/2 carries any method token; each used to become a metrics series of its own.
    @Test func unknownMethodsAreRefusedBeforeAnyMetricLabel() async throws {
        let server = try await TestServer.start { $0.http2 = true }
        defer { server.removeFiles() }
        let base = "http://127.0.0.1:\(server.port)"
        for method in ["FOOBAR", "X-\(UUID().uuidString.prefix(8))"] {
            let r = try await HTTP2Tests.curl(["--http2-prior-knowledge", "-X", method, base + "/healthz"])
            #expect(r.stdout.hasSuffix("2 501"), "\(method): \(r.stdout) \(r.stderr)")
        }
        #expect(try await HTTP2Tests.curl(["--http2-prior-knowledge", base + "/healthz"]).stdout.hasSuffix("2 200"))
        await server.stop()
    }

    /// Trusted proxies may come from a published list (a CDN's ranges), refreshed without a restart.
    @Test func trustedProxiesFromAPublishedList() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-trust-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "# our load balancers\n127.21.0.0/24\n".write(toFile: dir + "/lb.txt", atomically: true, encoding: .utf8)
        var c = ServeConfiguration()
        try c.apply(yaml: "trusted_proxies: [\"lb=\(dir)/lb.txt\"]\nreal_ip_header: x-real-ip\n")
        #expect(c.trustedProxies.isEmpty && c.trustedProxySources.count == 1 && c.realIPSource == .xRealIP)
        let server = try await TestServer.start(configure: {
            $0.trustedProxySources = c.trustedProxySources
            $0.realIPHeader = c.realIPHeader
            $0.trustedProxiesRefreshSeconds = 1
        }, directory: dir)
        defer { server.removeFiles() }
        let client = server.client
        let named = [("X-Real-IP", "127.22.0.9")]
        #expect(try await client.get("/ip", source: "127.21.0.1", headers: named).text == "127.22.0.9\n")
        #expect(try await client.get("/ip", source: "127.23.0.1", headers: named).text == "127.23.0.1\n", "not listed: not believed")
        // The list changes: the new balancer is believed, the old one no longer.
        try "127.23.0.0/24\n".write(toFile: dir + "/lb.txt", atomically: true, encoding: .utf8)
        _ = await eventually { server.guards.trustedProxies.contains(IPAddress("127.23.0.1")!) }
        #expect(try await client.get("/ip", source: "127.23.0.1", headers: named).text == "127.22.0.9\n")
        #expect(try await client.get("/ip", source: "127.21.0.1", headers: named).text == "127.21.0.1\n")
        await server.stop()
    }
}
