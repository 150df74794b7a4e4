import Foundation
import Testing
import Edge
@testable import Game

/// Snapshot reads answered on the event loop (FastReads) against the router's answers for the
/// same snapshot: a query string sends a read to the router, which ignores unknown parameters.
@Suite(.serialized) struct FastReadTests {
    static let paths = ["/recent", "/score", "/score/week", "/api/recent", "/api/leaderboard", "/api/blocks"]
    static let sameHeaders = ["content-type", "etag", "cache-control", "vary", "access-control-allow-origin", "content-encoding", "server"]

    /// Claims, then waits until the snapshot shows them.
    static func play(_ server: TestServer) async throws {
        let c = server.client
        for i in 0..<12 {
            #expect(try await c.get("/claim?name=\(["ann", "ben", "cy"][i % 3])", source: "127.\(40 + i % 4).0.\(i + 1)").status == 200)
        }
        for _ in 0..<40 {
            if try await c.get("/recent?wait").text.components(separatedBy: "\"ann\"").count == 5 { return }
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

    /// With `http.fast_reads: false` every read goes through the router and answers the same.
    @Test func fastReadsCanBeTurnedOff() async throws {
        let server = try await TestServer.start { $0.fastReads = false }
        defer { server.removeFiles() }
        try await Self.play(server)
        let plain = try await server.client.get("/score")
        #expect(plain.status == 200 && plain.text.contains("\"ann\":[[127,"))
        #expect(plain.headers["server"] == "ipquest" && plain.headers["x-request-id"]?.count == 16)
        await server.stop()
        var parsed = ServeConfiguration()
        try parsed.apply(yaml: "http: { fast_reads: false }")
        #expect(parsed.fastReads == false)
        #expect(throws: ConfigurationError.self) { try parsed.apply(yaml: "http: { fast_reads: sometimes }") }
    }
}
