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

    @Test func dateHeaderFormat() {
        #expect(HTTPDate.format(epochSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(epochSeconds: 1_795_392_000) == "Mon, 23 Nov 2026 00:00:00 GMT")
        #expect(HTTPDate.format(epochSeconds: 951_782_400 + 3_723) == "Tue, 29 Feb 2000 01:02:03 GMT")
    }
}
