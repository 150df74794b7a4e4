import HTTPTypes
import IPAddress
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
@testable import HTTPServing
import Edge

/// The handler's contract on an EmbeddedChannel: what it answers itself, what it hands on,
/// and that a pipelining client always gets its answers in request order.
@Suite struct FastResponseHandlerTests {
    /// Answers GET /fast with "fast body"; everything else goes on.
    static func channel(client: IPAddress? = IPAddress("192.0.2.7")) throws -> (EmbeddedChannel, Seen) {
        let seen = Seen()
        let handler = FastResponseHandler(serverName: "test", client: { _ in client }) { request, peer in
            seen.clients.append(peer)
            guard request.path == "/fast", request.method == .get || request.method == .head else { return nil }
            return .answer(.init(head: HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), body: ByteBuffer(string: "fast body")))
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        return (channel, seen)
    }

    final class Seen: @unchecked Sendable { var clients: [IPAddress?] = [] }

    @Test func answersWithFramingHeadersAndSwallowsTheRequest() throws {
        let (channel, seen) = try Self.channel()
        try channel.writeInbound(EmbeddedHTTP.head("/fast", [RequestID.field: "abc-1"]))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "ignored")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil, "the application sees nothing")
        let parts = try EmbeddedHTTP.written(channel)
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
        try channel.writeInbound(EmbeddedHTTP.head("/fast", method: .head, [.connection: "close"]))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        let parts = try EmbeddedHTTP.written(channel)
        #expect(parts.count == 2)
        guard case .head(let head) = parts.first else { Issue.record("no head"); return }
        #expect(head.headerFields[.contentLength] == "9")
        #expect(head.headerFields[.connection] == "close")
        #expect(head.headerFields[RequestID.field]?.count == 16, "an id is made when the client sends none")
    }

    @Test func otherRequestsAndMethodsGoToTheApplicationUnchanged() throws {
        let (channel, _) = try Self.channel()
        try channel.writeInbound(EmbeddedHTTP.head("/slow"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        guard case .head(let forwarded) = try channel.readInbound(as: HTTPRequestPart.self) else { Issue.record("not forwarded"); return }
        #expect(forwarded.path == "/slow")
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
        #expect(try EmbeddedHTTP.written(channel).isEmpty)
        // The responder decides per method too: a POST it declines goes on.
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try EmbeddedHTTP.written(channel)
        try channel.writeInbound(EmbeddedHTTP.head("/fast", method: .post))
        guard case .head(let post) = try channel.readInbound(as: HTTPRequestPart.self) else { Issue.record("POST not forwarded"); return }
        #expect(post.method == .post)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let (channel, _) = try Self.channel()
        // The application owes an answer to /slow, so /fast behind it must wait its turn: it
        // goes to the application too, which answers in order.
        try channel.writeInbound(EmbeddedHTTP.head("/slow"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try channel.writeInbound(EmbeddedHTTP.head("/fast"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try EmbeddedHTTP.written(channel).isEmpty, "nothing may overtake the pending answer")
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
        _ = try EmbeddedHTTP.written(channel)
        try channel.writeInbound(EmbeddedHTTP.head("/fast"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        #expect(try EmbeddedHTTP.written(channel).count == 3)
    }

    @Test func notModifiedCarriesNoLength() throws {
        let handler = FastResponseHandler(serverName: nil, client: { _ in nil }) { _, _ in
            .answer(.init(head: HTTPResponse(status: .notModified, headerFields: [.eTag: "\"1\""]), body: nil))
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.writeInbound(EmbeddedHTTP.head("/any"))
        let parts = try EmbeddedHTTP.written(channel)
        #expect(parts.count == 2)
        guard case .head(let head) = parts.first else { Issue.record("no head"); return }
        #expect(head.status == .notModified)
        #expect(head.headerFields[.contentLength] == nil)
        #expect(head.headerFields[.server] == nil)
    }

    /// Answers /later when told to, /fast at once; everything else goes on.
    static func deferringChannel() throws -> (EmbeddedChannel, PendingDone) {
        let pending = PendingDone()
        let handler = FastResponseHandler(serverName: nil, client: { _ in nil }) { request, _ in
            if request.path == "/later" { return .deferred { done in pending.store(done) } }
            if request.path == "/fast" { return .answer(.init(head: HTTPResponse(status: .ok), body: ByteBuffer(string: "now"))) }
            return nil
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() // active: answers are written
        return (channel, pending)
    }

    @Test func deferredAnswersHoldWhatFollowsInOrder() throws {
        let (channel, pending) = try Self.deferringChannel()
        try channel.writeInbound(EmbeddedHTTP.head("/later"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try channel.writeInbound(EmbeddedHTTP.head("/fast"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try channel.writeInbound(EmbeddedHTTP.head("/slow"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try EmbeddedHTTP.written(channel).isEmpty, "nothing overtakes the deferred answer")
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil, "nor reaches the application before it")
        pending.done?({ .init(head: HTTPResponse(status: .accepted), body: ByteBuffer(string: "later")) })
        channel.embeddedEventLoop.run()
        #expect(EmbeddedHTTP.statuses(try EmbeddedHTTP.written(channel)) == [202, 200], "the deferred answer, then the one read behind it")
        guard case .head(let slow) = try channel.readInbound(as: HTTPRequestPart.self) else { Issue.record("/slow not handed on"); return }
        #expect(slow.path == "/slow")
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
    }

    @Test func aDeferredAnswerForAClosedConnectionIsDropped() throws {
        let (channel, pending) = try Self.deferringChannel()
        try channel.writeInbound(EmbeddedHTTP.head("/later"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        _ = try channel.close().wait()
        pending.done?({ .init(head: HTTPResponse(status: .accepted), body: nil) })
        channel.embeddedEventLoop.run()
        #expect(try EmbeddedHTTP.written(channel).isEmpty)
    }

    @Test func aClientThatPipelinesTooMuchBehindADeferredAnswerIsCutOff() throws {
        let (channel, _) = try Self.deferringChannel()
        try channel.writeInbound(EmbeddedHTTP.head("/later"))
        try channel.writeInbound(HTTPRequestPart.end(nil)) // its own end is dropped at once
        for _ in 0...FastResponseHandler.maxWaitingParts { try channel.writeInbound(HTTPRequestPart.end(nil)) }
        #expect(!channel.isActive)
    }

    @Test func gracefulShutdownWaitsForTheDeferredAnswer() throws {
        let (channel, pending) = try Self.deferringChannel()
        let events = EventRecorder()
        try channel.pipeline.syncOperations.addHandler(events)
        try channel.writeInbound(EmbeddedHTTP.head("/later"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(events.quiesced == 0, "held while the answer is owed")
        pending.done?({ .init(head: HTTPResponse(status: .accepted), body: nil) })
        channel.embeddedEventLoop.run()
        #expect(events.quiesced == 1)
    }

    final class EventRecorder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPRequestPart
        var quiesced = 0
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { quiesced += 1 }
        }
    }

    final class PendingDone: @unchecked Sendable {
        var done: FastReply.Done?
        func store(_ d: @escaping FastReply.Done) { done = d }
    }
}
