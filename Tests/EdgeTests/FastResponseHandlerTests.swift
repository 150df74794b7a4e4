import HTTPTypes
import IPAddress
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
@testable import Edge

/// The handler's contract on an EmbeddedChannel: what it answers itself, what it hands on,
/// and that a pipelining client always gets its answers in request order.
@Suite struct FastResponseHandlerTests {
    /// Answers GET /fast with "fast body"; everything else goes on.
    static func channel(client: IPAddress? = IPAddress("192.0.2.7")) throws -> (EmbeddedChannel, Seen) {
        let seen = Seen()
        let handler = FastResponseHandler(serverName: "test", client: { _ in client }) { request, peer in
            seen.clients.append(peer)
            guard request.path == "/fast" else { return nil }
            return .init(head: HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), body: ByteBuffer(string: "fast body"))
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        return (channel, seen)
    }

    final class Seen: @unchecked Sendable { var clients: [IPAddress?] = [] }

    static func head(_ path: String, method: HTTPRequest.Method = .get, _ fields: HTTPFields = [:]) -> HTTPRequestPart {
        .head(HTTPRequest(method: method, scheme: "http", authority: "x", path: path, headerFields: fields))
    }

    /// Everything written outbound so far.
    static func written(_ channel: EmbeddedChannel) throws -> [HTTPResponsePart] {
        var out: [HTTPResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) { out.append(part) }
        return out
    }

    @Test func answersWithFramingHeadersAndSwallowsTheRequest() throws {
        let (channel, seen) = try Self.channel()
        try channel.writeInbound(Self.head("/fast", [RequestID.field: "abc-1"]))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "ignored")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil, "the application sees nothing")
        let parts = try Self.written(channel)
        #expect(parts.count == 3)
        guard case .head(let head) = parts[0], case .body(let body) = parts[1], case .end = parts[2] else {
            Issue.record("expected head, body, end: \(parts)")
            return
        }
        #expect(head.status == .ok)
        #expect(head.headerFields[.contentLength] == "9")
        #expect(head.headerFields[.server] == "test")
        #expect(head.headerFields[RequestID.field] == "abc-1")
        #expect(head.headerFields[.date]?.hasSuffix(" GMT") == true)
        #expect(head.headerFields[.connection] == nil)
        #expect(String(buffer: body) == "fast body")
        #expect(seen.clients == [IPAddress("192.0.2.7")])
    }

    @Test func headGetsTheLengthButNoBodyAndCloseIsHonoured() throws {
        let (channel, _) = try Self.channel()
        try channel.writeInbound(Self.head("/fast", method: .head, [.connection: "close"]))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        let parts = try Self.written(channel)
        #expect(parts.count == 2)
        guard case .head(let head) = parts.first else { Issue.record("no head"); return }
        #expect(head.headerFields[.contentLength] == "9")
        #expect(head.headerFields[.connection] == "close")
        #expect(head.headerFields[RequestID.field]?.count == 16, "an id is made when the client sends none")
    }

    @Test func otherRequestsAndMethodsGoToTheApplicationUnchanged() throws {
        let (channel, _) = try Self.channel()
        try channel.writeInbound(Self.head("/slow"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        guard case .head(let forwarded) = try channel.readInbound(as: HTTPRequestPart.self) else { Issue.record("not forwarded"); return }
        #expect(forwarded.path == "/slow")
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
        #expect(try Self.written(channel).isEmpty)
        // A POST to the fast path is not the fast path's business.
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try Self.written(channel)
        try channel.writeInbound(Self.head("/fast", method: .post))
        guard case .head(let post) = try channel.readInbound(as: HTTPRequestPart.self) else { Issue.record("POST not forwarded"); return }
        #expect(post.method == .post)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let (channel, _) = try Self.channel()
        // The application owes an answer to /slow, so /fast behind it must wait its turn: it
        // goes to the application too, which answers in order.
        try channel.writeInbound(Self.head("/slow"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try channel.writeInbound(Self.head("/fast"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try Self.written(channel).isEmpty, "nothing may overtake the pending answer")
        var paths: [String?] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let h) = part { paths.append(h.path) }
        }
        #expect(paths == ["/slow", "/fast"])
        // Once the application has answered both, /fast is served here again.
        for _ in 0..<2 {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        _ = try Self.written(channel)
        try channel.writeInbound(Self.head("/fast"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        #expect(try Self.written(channel).count == 3)
    }

    @Test func notModifiedCarriesNoLength() throws {
        let handler = FastResponseHandler(serverName: nil, client: { _ in nil }) { _, _ in
            .init(head: HTTPResponse(status: .notModified, headerFields: [.eTag: "\"1\""]), body: nil)
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.writeInbound(Self.head("/any"))
        let parts = try Self.written(channel)
        #expect(parts.count == 2)
        guard case .head(let head) = parts.first else { Issue.record("no head"); return }
        #expect(head.status == .notModified)
        #expect(head.headerFields[.contentLength] == nil)
        #expect(head.headerFields[.server] == nil)
    }
}

/// The byte-level fast path in front of the decoder: it may only ever cut the stream at the
/// end of a head it delimited itself, so whatever it does not answer reaches the decoder
/// byte for byte, however the bytes are split.
@Suite struct HTTP1FastPathHandlerTests {
    static let limits = HTTP1FastPathHandler.Limits(maxHeadBytes: 4096, maxFields: 20, maxRequestsPerConnection: 1000)

    static func channel(answering: Bool) throws -> EmbeddedChannel {
        let handler = HTTP1FastPathHandler(serverName: "t", limits: limits, guard: nil, client: { _ in IPAddress("192.0.2.1") }) { request, _ in
            guard answering, request.path == "/fast" else { return nil }
            return .answer(.init(head: HTTPResponse(status: .ok), body: ByteBuffer(string: "ok")))
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        return channel
    }

    /// Feeds `bytes` in chunks at the given cut points; returns what reached the next handler
    /// and what was written back.
    static func feed(_ channel: EmbeddedChannel, _ bytes: [UInt8], cuts: [Int]) throws -> (forwarded: [UInt8], written: String) {
        var start = 0
        for cut in (cuts + [bytes.count]).sorted() where cut >= start && cut <= bytes.count {
            if cut > start { try channel.writeInbound(ByteBuffer(bytes: bytes[start..<cut])) }
            start = cut
        }
        var forwarded: [UInt8] = []
        while var b = try channel.readInbound(as: ByteBuffer.self) { forwarded += b.readBytes(length: b.readableBytes)! }
        var written = ""
        while var b = try channel.readOutbound(as: ByteBuffer.self) { written += b.readString(length: b.readableBytes)! }
        return (forwarded, written)
    }

    static let pieces: [String] = [
        "GET /fast HTTP/1.1\r\n", "GET /slow HTTP/1.1\r\n", "POST /fast HTTP/1.1\r\n", "GET /fast HTTP/1.0\r\n",
        "Host: x\r\n", "Accept: */*\r\n", "Content-Length: 0\r\n", "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n",
        "X-Odd: a\nb\r\n", " folded\r\n", "NoColon\r\n", "\r\n", "\r\n", "\r\n", "hello", "\n", "\r", "GET  /fast HTTP/1.1\r\n",
        "Connection: keep-alive\r\n", "Upgrade: h2c\r\n", "CONNECT x:1 HTTP/1.1\r\n", "\u{80}\u{FF}",
    ]

    @Test func everythingItDoesNotAnswerReachesTheDecoderUnchanged() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let text = (0..<Int.random(in: 1...14, using: &rng)).map { _ in Self.pieces.randomElement(using: &rng)! }.joined()
            let bytes = Array(text.utf8)
            let cuts = (0..<Int.random(in: 0...6, using: &rng)).map { _ in Int.random(in: 0...bytes.count, using: &rng) }
            let (forwarded, written) = try Self.feed(try Self.channel(answering: false), bytes, cuts: cuts)
            // Bytes of an unfinished head may still be held; everything else went on, in order.
            #expect(bytes.starts(with: forwarded), "\(text.debugDescription)")
            #expect(written.isEmpty)
        }
    }

    @Test func answersCleanHeadsAndStopsAtTheFirstOneItDoesNotAnswer() throws {
        let clean = "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
        let slow = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        // Byte by byte: still answered; from the first head handed to the decoder on, the
        // decoder owns the connection (it may refuse that head, and then nothing after it
        // may be answered as a request of its own).
        let bytes = Array((clean + slow + clean).utf8)
        let (forwarded, written) = try Self.feed(try Self.channel(answering: true), bytes, cuts: Array(1..<bytes.count))
        #expect(String(decoding: forwarded, as: UTF8.self) == slow + clean, "the rest goes on whole")
        #expect(written.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 1)
        // A head with a field line the decoder refuses is never followed by an answer.
        let refused = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 28\r\n\r\n" + clean
        let (all, none0) = try Self.feed(try Self.channel(answering: true), Array(refused.utf8), cuts: [])
        #expect(String(decoding: all, as: UTF8.self) == refused && none0.isEmpty)
        // A bare LF makes the connection pass everything through from then on.
        let ambiguous = "GET /slow HTTP/1.1\nHost: x\r\n\r\n" + clean
        let (through, none) = try Self.feed(try Self.channel(answering: true), Array((clean + ambiguous).utf8), cuts: [])
        #expect(String(decoding: through, as: UTF8.self) == ambiguous)
        #expect(none.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 1)
        // A body announced: the body is the decoder's, and so is everything after it.
        let body = "GET /fast HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + clean
        let (bodyAndAll, nothing) = try Self.feed(try Self.channel(answering: true), Array(body.utf8), cuts: [7])
        #expect(String(decoding: bodyAndAll, as: UTF8.self) == body && nothing.isEmpty)
    }

    @Test func deferredAnswersHoldTheRestInOrder() throws {
        let pending = PendingDone()
        let handler = HTTP1FastPathHandler(serverName: nil, limits: Self.limits, guard: nil, client: { _ in nil }) { request, _ in
            if request.path == "/later" { return .deferred { done in pending.store(done) } }
            if request.path == "/fast" { return .answer(.init(head: HTTPResponse(status: .ok), body: ByteBuffer(string: "now"))) }
            return nil
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() // active: answers are written
        let (_, before) = try Self.feed(channel, Array("GET /later HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n".utf8), cuts: [])
        #expect(before.isEmpty, "nothing overtakes the deferred answer")
        pending.done?({ .init(head: HTTPResponse(status: .accepted), body: ByteBuffer(string: "later")) })
        channel.embeddedEventLoop.run()
        let (_, after) = try Self.feed(channel, [], cuts: [])
        let later = after.range(of: "HTTP/1.1 202 Accepted")
        let now = after.range(of: "HTTP/1.1 200 OK")
        #expect(later != nil && now != nil && later!.lowerBound < now!.lowerBound, "\(after)")
    }

    final class PendingDone: @unchecked Sendable {
        var done: FastReply.Done?
        func store(_ d: @escaping FastReply.Done) { done = d }
    }
}
