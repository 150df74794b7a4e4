import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Testing
@testable import HTTPServing
import Edge

/// `ConnectionLifecycleHandler` on an EmbeddedChannel: every timer runs on the embedded loop's
/// clock (`advanceTime`), so timeouts are tested by moving time, not by waiting for it.
@Suite struct ConnectionLifecycleHandlerTests {
    static func channel(
        maxRequests: Int = 100, maxLifetime: TimeAmount? = nil, maxBodyBytes: Int = 1_000,
        admission: ConnectionLifecycleHandler.Admission? = nil, idleTimeout: TimeAmount? = nil, firstHeadTimeout: TimeAmount? = nil
    ) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionLifecycleHandler(
            maxRequests: maxRequests, maxLifetime: maxLifetime, guard: nil, maxBodyBytes: maxBodyBytes,
            admission: admission, idleTimeout: idleTimeout, firstHeadTimeout: firstHeadTimeout))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// The application's answer to the request it was handed.
    static func answer(_ channel: EmbeddedChannel, _ text: String = "ok") throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "\(text.utf8.count)"])))
        try channel.writeOutbound(HTTPResponsePart.body(ByteBuffer(string: text)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
    }

    static func requestsHandedOn(_ channel: EmbeddedChannel) throws -> Int {
        var n = 0
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { if case .head = part { n += 1 } }
        return n
    }

    @Test func anIdleConnectionClosesAtItsTimeoutAndActivityPostponesIt() throws {
        let channel = try Self.channel(idleTimeout: .seconds(30))
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        try channel.writeInbound(EmbeddedHTTP.head())
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try Self.answer(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive, "30 s from the last activity, not from the start")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test func aRequestBeingAnsweredIsNotIdle() throws {
        let channel = try Self.channel(idleTimeout: .seconds(30))
        try channel.writeInbound(EmbeddedHTTP.head())
        try channel.writeInbound(HTTPRequestPart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(90)) // the application is slow
        #expect(channel.isActive)
        try Self.answer(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(31))
        #expect(!channel.isActive)
    }

    @Test func aHeadSentSlowerThanTheTimeoutIsCutOff() throws {
        let channel = try Self.channel(idleTimeout: .seconds(30))
        try channel.writeInbound(EmbeddedHTTP.head()) // the head, but never its end
        channel.embeddedEventLoop.advanceTime(by: .seconds(31))
        #expect(!channel.isActive)
    }

    @Test func theFirstHeadMustArriveBeforeItsOwnShorterTimeout() throws {
        let silent = try Self.channel(idleTimeout: .seconds(30), firstHeadTimeout: .seconds(10))
        silent.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(silent.isActive)
        silent.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!silent.isActive)

        let prompt = try Self.channel(idleTimeout: .seconds(30), firstHeadTimeout: .seconds(10))
        try prompt.writeInbound(EmbeddedHTTP.head())
        try prompt.writeInbound(HTTPRequestPart.end(nil))
        prompt.embeddedEventLoop.advanceTime(by: .seconds(15))
        #expect(prompt.isActive, "a connection that asked is governed by the idle timeout only")
    }

    @Test func theLastAllowedRequestIsAnsweredWithConnectionClose() throws {
        let channel = try Self.channel(maxRequests: 2)
        for _ in 0..<2 {
            try channel.writeInbound(EmbeddedHTTP.head())
            try channel.writeInbound(HTTPRequestPart.end(nil))
            try Self.answer(channel)
        }
        let parts = try EmbeddedHTTP.written(channel)
        let heads = parts.compactMap { if case .head(let h) = $0 { return h } else { return nil } }
        #expect(heads.map { $0.headerFields[.connection] } == [nil, "close"])
        #expect(!channel.isActive)
    }

    @Test func aConnectionPastItsLifetimeClosesAfterTheCurrentAnswer() throws {
        let idle = try Self.channel(maxLifetime: .seconds(60))
        idle.embeddedEventLoop.advanceTime(by: .seconds(61))
        #expect(!idle.isActive)

        let busy = try Self.channel(maxLifetime: .seconds(60))
        try busy.writeInbound(EmbeddedHTTP.head())
        try busy.writeInbound(HTTPRequestPart.end(nil))
        busy.embeddedEventLoop.advanceTime(by: .seconds(61))
        #expect(busy.isActive, "the request in progress is answered first")
        try Self.answer(busy)
        let heads = try EmbeddedHTTP.written(busy).compactMap { if case .head(let h) = $0 { return h } else { return nil } }
        #expect(heads.last?.headerFields[.connection] == "close")
        #expect(!busy.isActive)
    }

    @Test func aDeclaredBodyOverTheLimitGets413AndNeverReachesTheApplication() throws {
        let channel = try Self.channel(maxBodyBytes: 100)
        try channel.writeInbound(EmbeddedHTTP.head("/claim", [.contentLength: "5000"]))
        let parts = try EmbeddedHTTP.written(channel)
        #expect(EmbeddedHTTP.statuses(parts) == [413])
        #expect(try Self.requestsHandedOn(channel) == 0)
        guard case .body(let body) = parts.dropFirst().first else { Issue.record("no body"); return }
        #expect(String(buffer: body).contains("5000 bytes, at most 100"))
    }

    @Test func anOversizedHeadGets431() throws {
        let channel = try Self.channel()
        channel.pipeline.fireErrorCaught(HTTPParserError.headerOverflow)
        let parts = try EmbeddedHTTP.written(channel)
        #expect(EmbeddedHTTP.statuses(parts) == [431])
        let heads = parts.compactMap { if case .head(let h) = $0 { return h } else { return nil } }
        #expect(heads.first?.headerFields[.connection] == "close")
    }

    @Test func requestsBeyondTheBudgetGet503AndTheSlotReturnsWithTheAnswer() throws {
        let reads = InFlightLimiter(limit: 1)
        let claims = InFlightLimiter(limit: 1)
        let admission = ConnectionLifecycleHandler.Admission(reads: reads, claims: claims, isClaim: { $0.hasPrefix("/claim") })
        let first = try Self.channel(admission: admission)
        let second = try Self.channel(admission: admission)
        try first.writeInbound(EmbeddedHTTP.head("/score"))
        try first.writeInbound(HTTPRequestPart.end(nil))
        // The read budget is taken by the first connection's request, the claim budget is not.
        try second.writeInbound(EmbeddedHTTP.head("/score"))
        try second.writeInbound(HTTPRequestPart.end(nil))
        let refused = try EmbeddedHTTP.written(second)
        #expect(EmbeddedHTTP.statuses(refused) == [503])
        let refusedHead = refused.compactMap { if case .head(let h) = $0 { return h } else { return nil } }.first
        #expect(refusedHead?.headerFields[.retryAfter] == "1" && refusedHead?.headerFields[.connection] == nil)
        #expect(second.isActive, "a shed request keeps its connection for the retry")
        try second.writeInbound(EmbeddedHTTP.head("/claim?name=x"))
        try second.writeInbound(HTTPRequestPart.end(nil))
        #expect(try Self.requestsHandedOn(second) == 1)
        // The first answer gives the read slot back.
        try Self.answer(first)
        try second.writeInbound(EmbeddedHTTP.head("/score"))
        #expect(try Self.requestsHandedOn(second) == 1)
    }
}
