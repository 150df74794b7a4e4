import Foundation
import HTTPTypes
import IPAddress
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing
@testable import Edge

/// Issue 20, item 3: the byte-level fast path handed a head with a malformed field line
/// (`Content-Length : 28`) to the decoder, which refused it, and then answered the "body"
/// bytes as requests of their own — a smuggled claim. The rule now: for any bytes, the
/// requests that reach a route (answered by the fast path, or delivered by the decoder behind
/// it) are exactly the requests NIO's decoder alone delivers, in the same order.
@Suite struct HTTP1FastPathDifferentialTests {
    /// Records every request that reaches "a route": the fast path's answers and the decoder's heads.
    final class Routes: @unchecked Sendable {
        private let lock = NIOLock()
        private var _seen: [String] = []
        func add(_ s: String) { lock.withLock { _seen.append(s) } }
        var seen: [String] { lock.withLock { _seen } }
    }

    /// Stands for the application: records each request head that reaches it, until the
    /// first error, after which Hummingbird answers 400 and closes the connection.
    final class HeadRecorder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPRequestPart
        let routes: Routes
        var failed = false
        init(_ routes: Routes) { self.routes = routes }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if !failed, case .head(let head) = unwrapInboundIn(data) { routes.add("\(head.method.rawValue) \(head.path ?? "")") }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { failed = true }
    }

    /// What reaches a route when `chunks` arrive on one connection: the pipeline of
    /// Hummingbird's HTTP1Channel (NIO's decoder, then the HTTPTypes codec), with or without
    /// the fast path in front.
    static func routed(_ chunks: [[UInt8]], fastPath: Bool) throws -> [String] {
        let routes = Routes()
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        let recorder = HeadRecorder(routes)
        try channel.pipeline.syncOperations.addHandler(recorder)
        if fastPath {
            let limits = HTTP1FastPathHandler.Limits(maxHeadBytes: 16 * 1024, maxFields: 100, maxRequestsPerConnection: 10_000)
            let handler = HTTP1FastPathHandler(serverName: "t", limits: limits, guard: nil, client: { _ in IPAddress("192.0.2.1") }) { request, _ in
                guard let path = request.path, path == "/ip" || path.hasPrefix("/claim") else { return nil }
                routes.add("\(request.method.rawValue) \(path)")
                return .answer(.init(head: HTTPResponse(status: .ok), body: ByteBuffer(string: "ok")))
            }
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }
        for chunk in chunks {
            guard channel.isActive, !recorder.failed else { break }
            _ = try? channel.writeInbound(channel.allocator.buffer(bytes: chunk))
        }
        _ = try? channel.finish()
        return routes.seen
    }

    static func check(_ bytes: [UInt8], splits: [Int] = [], label: String = "") throws {
        var chunks: [[UInt8]] = []
        var start = 0
        for s in splits.sorted() where s > start && s < bytes.count {
            chunks.append(Array(bytes[start..<s]))
            start = s
        }
        chunks.append(Array(bytes[start...]))
        let alone = try routed(chunks, fastPath: false)
        let withFastPath = try routed(chunks, fastPath: true)
        #expect(withFastPath == alone, "\(label) \(String(decoding: bytes, as: UTF8.self).debugDescription)")
    }

    @Test func theSmuggledClaimOfTheReportIsNotAnswered() throws {
        for field in ["Content-Length : 28", "Transfer-Encoding : chunked", "Content-Length\t: 28", "Bad Name: x", "NoColonHere"] {
            let smuggled = "POST /x HTTP/1.1\r\nHost: a\r\n\(field)\r\n\r\nGET /claim?name=smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
            let routes = try Self.routed([Array(smuggled.utf8)], fastPath: true)
            #expect(!routes.contains("GET /claim?name=smuggled"), "\(field): \(routes)")
            try Self.check(Array(smuggled.utf8), label: field)
        }
        // Heads the decoder (or the HTTPTypes conversion behind it) refuses are not answered either.
        for head in Self.pieces { try Self.check(Array(head.utf8), label: "alone") }
        let ip = "GET /ip HTTP/1.1\r\nHost: a\r\nContent-Length : 28\r\n\r\nGET /ip HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(try Self.routed([Array(ip.utf8)], fastPath: true).isEmpty)
    }

    static let pieces: [String] = [
        "GET /ip HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /claim?name=ann HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n\r\n",
        "HEAD /claim/bob HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /other HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /claim?name=p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /ip HTTP/1.0\r\n\r\n",
        "GET /ip HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "GET /ip HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /ip HTTP/1.1\r\nHost: a\r\n X-Fold: y\r\n\r\n",
        "GET /ip HTTP/1.1\nHost: a\n\n",
        "GET /ip HTTP/1.1\r\nHost: a\r\nContent-Length : 28\r\n\r\n",
        "GET /ip HTTP/1.1\r\nX: \u{7F}\r\n\r\n",
        "GET /claim?name=a\"b HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n",
        "GARBAGE\r\n\r\n",
    ]

    /// Random sequences of well-formed and malformed requests, mutated and cut at random
    /// points; the seed is printed (FUZZ_SEED repeats a run).
    @Test func fuzzedStreamsReachTheSameRoutesAsTheDecoderAlone() throws {
        var rng = SeededGenerator(seed: UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 0x5EED_F00D)
        print("HTTP1FastPathDifferentialTests fuzz seed: \(rng.seed) (FUZZ_SEED to repeat)")
        let noise = Array(" :\r\n\t/?0aG".utf8)
        for round in 0..<3_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 1...5, using: &rng) { bytes += Array(Self.pieces.randomElement(using: &rng)!.utf8) }
            for _ in 0..<Int.random(in: 0...3, using: &rng) where !bytes.isEmpty {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0...2, using: &rng) {
                case 0: bytes[at] = noise.randomElement(using: &rng)!
                case 1: bytes.insert(noise.randomElement(using: &rng)!, at: at)
                default: bytes.remove(at: at)
                }
            }
            let splits = (0..<Int.random(in: 0...3, using: &rng)).map { _ in Int.random(in: 0...max(0, bytes.count), using: &rng) }
            try Self.check(bytes, splits: splits, label: "round \(round)")
        }
    }
}
