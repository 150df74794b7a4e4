import Foundation
import ConfigFile
import Testing
import Edge
@testable import Game
@testable import GameRules

/// The hot routes answered on the event loop (FastRoutes) against the router's answers: a query
/// string sends a read to the router (which ignores unknown parameters), and so does a second
/// parameter on a claim.
@Suite(.serialized) struct FastPathTests {
    static let paths = ["/recent", "/score", "/score/week", "/api/recent", "/api/leaderboard", "/api/blocks"]
    static let sameHeaders = ["content-type", "etag", "cache-control", "vary", "access-control-allow-origin", "content-encoding", "server"]

    /// Claims, then waits until the snapshot shows them.
    static func play(_ server: TestServer) async throws {
        let c = server.client
        for i in 0..<12 {
            #expect(try await c.get("/claim?name=\(["ann", "ben", "cy"][i % 3])", source: "127.\(40 + i % 4).0.\(i + 1)").status == 200)
        }
        for _ in 0..<40 {
            // All twelve in the snapshot (not just some), so its ETag holds still from here on.
            if try await c.get("/api/recent?wait").text.components(separatedBy: "\"claimed_at\"").count == 13 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the snapshot never showed the claims")
    }

    @Test func fastAnswersEqualTheRoutersAnswers() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        try await Self.play(server)
        let c = server.client
        for path in Self.paths {
            for headers in [[], [("Accept-Encoding", "gzip, deflate")]] as [[(String, String)]] {
                let fast = try await c.get(path, headers: headers)
                let routed = try await c.get(path + "?via=router", headers: headers)
                #expect(fast.status == 200 && routed.status == 200, "\(path)")
                #expect(fast.body == routed.body, "\(path) \(headers)")
                for name in Self.sameHeaders {
                    #expect(fast.headers[name] == routed.headers[name], "\(path) \(name)")
                }
                for name in ["date", "x-request-id", "content-length"] {
                    #expect(fast.headers[name] != nil && routed.headers[name] != nil, "\(path) \(name)")
                }
                #expect(fast.headers["content-length"] == String(fast.body.count))
                if !headers.isEmpty, fast.body.count > 300 { #expect(fast.headers["content-encoding"] == "gzip", "\(path)") }
            }
            // Conditional requests: 304 from both, with the validator and no body.
            let etag = try await c.get(path).headers["etag"] ?? ""
            let fast = try await c.get(path, headers: [("If-None-Match", etag)])
            let routed = try await c.get(path + "?via=router", headers: [("If-None-Match", etag)])
            #expect(fast.status == 304 && routed.status == 304, "\(path)")
            #expect(fast.body.isEmpty && fast.headers["etag"] == etag)
            // HEAD: the length of the GET body, no body.
            let full = try await c.get(path)
            let head = try await c.request("HEAD", path)
            #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == String(full.body.count), "\(path)")
        }
        await server.stop()
    }

    /// A pipelining client gets its answers in request order: the read behind a claim waits
    /// for the claim's group commit instead of overtaking it on the event loop.
    @Test func pipelinedReadsWaitForTheClaimBeforeThem() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let c = server.client
        let raw = try await onThread { () throws -> String in
            let fd = try c.connectSocket(source: "127.44.0.1")
            defer { close(fd) }
            let requests = "GET /claim?name=first HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
                + "GET /score HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /claim?name=second HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
                + "GET /recent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            try c.sendAll(fd, Array(requests.utf8))
            return String(decoding: c.readToEnd(fd), as: UTF8.self)
        }
        let first = raw.range(of: "claimed for first.")
        let score = raw.range(of: "{\"now\":[")
        let second = raw.range(of: "claimed for second.")
        let recent = raw.range(of: "\"recent\":[")
        #expect(raw.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 4, "\(raw)")
        if let first, let score, let second, let recent {
            #expect(first.lowerBound < score.lowerBound && score.lowerBound < second.lowerBound && second.lowerBound < recent.lowerBound)
        } else {
            Issue.record("missing answers: \(raw)")
        }
        await server.stop()
    }

    /// Claims answered from the bytes (`/claim?name=`, `/claim/NAME`) and by the router
    /// (`&via=router`) store the same way and answer the same: every format, the claim bucket's
    /// 429, and the refusals the router keeps (bad names, percent-encoding).
    @Test func fastClaimsAnswerLikeTheRouter() async throws {
        let server = try await TestServer.start { $0.rateLimitBurst = 3; $0.rateLimitPerSecond = 0.001 }
        defer { server.removeFiles() }
        let c = server.client
        for (i, accept) in ["text/plain", "application/json", "text/html", "image/png"].enumerated() {
            let fast = try await c.get("/claim?name=fay", source: "127.50.\(i).1", headers: [("Accept", accept)])
            let routed = try await c.get("/claim?name=fay&via=router", source: "127.50.\(i).2", headers: [("Accept", accept)])
            #expect(fast.status == 200 && routed.status == 200, "\(accept)")
            for name in ["content-type", "access-control-allow-origin", "cache-control", "vary", "server"] {
                #expect(fast.headers[name] == routed.headers[name], "\(accept) \(name)")
            }
            #expect(fast.headers["x-request-id"]?.count == 16 && fast.headers["content-length"] == String(fast.body.count))
            #expect(fast.text.replacingOccurrences(of: "127.50.\(i).1", with: "X") == routed.text.replacingOccurrences(of: "127.50.\(i).2", with: "X"), "\(accept)")
        }
        #expect(try await c.get("/claim/gus", source: "127.51.0.1", headers: [("Accept", "text/plain")]).text == "The land at 127.51.0.1 was claimed for gus.\n")
        // The claim bucket (3 per /24 here) answers 429 on both paths with the same words.
        for i in 2...3 { #expect(try await c.get("/claim?name=gus", source: "127.51.0.\(i)").status == 200) }
        let fast = try await c.get("/claim?name=gus", source: "127.51.0.4")
        let routed = try await c.get("/claim?name=gus&via=router", source: "127.51.0.5")
        #expect(fast.status == 429 && routed.status == 429)
        #expect(fast.text == routed.text && fast.text.hasPrefix("too many claims from your network; retry in "))
        #expect(fast.headers["retry-after"] != nil && fast.headers["retry-after"] == routed.headers["retry-after"])
        #expect(fast.headers["access-control-allow-origin"] == "*")
        // What the fast path leaves to the router still gets the router's answers.
        #expect(try await c.get("/claim?name=%3Cx%3E", source: "127.52.0.1").status == 400)
        #expect(try await c.get("/claim?name=a%2Bb", source: "127.52.0.2", headers: [("Accept", "text/plain")]).text == "The land at 127.52.0.2 was claimed for a+b.\n")
        #expect(try await c.get("/claim?name=" + String(repeating: "x", count: 41), source: "127.52.0.3").status == 400)
        await server.stop()
        let owners = Dictionary(uniqueKeysWithValues: try await SQLiteClaimStorage(path: server.databasePath).loadAll().map { ($0.address.description, $0.name.value) })
        #expect(owners["127.50.0.1"] == "fay" && owners["127.50.3.2"] == "fay" && owners["127.51.0.3"] == "gus" && owners["127.52.0.2"] == "a+b")
        #expect(owners["127.51.0.4"] == nil && owners["127.51.0.5"] == nil && owners.count == 12)
    }

    /// With `http.fast_path: false` every read goes through the router and answers the same.
    @Test func fastReadsCanBeTurnedOff() async throws {
        let server = try await TestServer.start { $0.fastPath = false }
        defer { server.removeFiles() }
        try await Self.play(server)
        let plain = try await server.client.get("/score")
        #expect(plain.status == 200 && plain.text.contains("\"ann\":[[127,"))
        #expect(plain.headers["server"] == "ipquest" && plain.headers["x-request-id"]?.count == 16)
        await server.stop()
        var parsed = ServeConfiguration()
        try parsed.apply(yaml: "http: { fast_path: false }")
        #expect(parsed.fastPath == false)
        #expect(throws: ConfigFileError.self) { try parsed.apply(yaml: "http: { fast_path: sometimes }") }
    }

    /// Admission refuses on the event loop exactly as on the router: one function, one
    /// rendering. A banned user agent (403), the per-network bucket (429, then a ban), on a
    /// read and a claim, with the event loop's answers compared to the router's.
    @Test func refusalsAreTheSameOnBothPaths() async throws {
        let server = try await TestServer.start {
            $0.bannedUserAgents = ["evil-bot"]
            $0.requestsBurst = 2
            $0.requestsPerSecond = 0.001
        }
        defer { server.removeFiles() }
        let c = server.client
        let bot = [("User-Agent", "evil-bot")]
        for path in ["/score", "/api/recent", "/claim?name=zed"] {
            let fast = try await c.get(path, source: "127.60.0.1", headers: bot)
            let routed = try await c.get(path + (path.contains("?") ? "&" : "?") + "via=router", source: "127.60.0.1", headers: bot)
            #expect(fast.status == 403 && routed.status == 403, "\(path)")
            #expect(fast.text == routed.text && fast.headers["content-type"] == routed.headers["content-type"], "\(path)")
        }
        // Two requests per /24 here: the third is 429 on either path, in the same words.
        #expect(try await c.get("/score", source: "127.61.0.1").status == 200)
        #expect(try await c.get("/score?via=router", source: "127.61.0.2").status == 200)
        let fast = try await c.get("/api/blocks", source: "127.61.0.3")
        let routed = try await c.get("/api/blocks?via=router", source: "127.61.0.4")
        #expect(fast.status == 429 && routed.status == 429)
        #expect(fast.text == routed.text && fast.text.contains("too many requests from your network"))
        #expect(fast.headers["content-type"] == "application/json", "an /api/ refusal is JSON on the event loop too")
        #expect(fast.headers["retry-after"] != nil && fast.headers["retry-after"] == routed.headers["retry-after"])
        await server.stop()
        #expect(try await SQLiteClaimStorage(path: server.databasePath).loadAll().isEmpty, "no refused claim was stored")
    }
}
