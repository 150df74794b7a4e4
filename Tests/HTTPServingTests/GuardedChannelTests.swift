import HummingbirdCore
import IPAddress
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import HTTPServing
import Edge

/// `GuardedChannel` and `LingeringClose.Drain` on an EmbeddedChannel: the connection cap and
/// its per-network share decided at setup, slots returned at close, and the drain that keeps a
/// refused client's answer from being lost to a reset.
@Suite struct GuardedChannelTests {
    /// The application's channel behind the guard: nothing to set up.
    struct Application: ServerChildChannel {
        struct Value: ServerChildChannelValue { let channel: any Channel }
        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            channel.eventLoop.makeSucceededFuture(Value(channel: channel))
        }
        func handle(value: Value, logger: Logger) async {}
    }

    static func connection(from address: String) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: address, port: 40_000)).wait()
        return channel
    }

    static let logger = Logger(label: "test")

    @Test func theGuardAdmitsUpToItsCapsAndTakesSlotsBackAtClose() throws {
        let guardian = ConnectionGuard(maxConnections: 3, maxConnectionsPerNetwork: 2, bans: BanList(capacity: 16),
                                       trustedProxies: TrustedProxies([]))
        let guarded = GuardedChannel(Application(), guard: guardian)
        let a = try Self.connection(from: "198.51.100.1")
        let b = try Self.connection(from: "198.51.100.2")
        let c = try Self.connection(from: "198.51.100.3")
        let other = try Self.connection(from: "203.0.113.9")
        #expect(throws: Never.self) { try guarded.setup(channel: a, logger: Self.logger).wait() }
        #expect(throws: Never.self) { try guarded.setup(channel: b, logger: Self.logger).wait() }
        // A third from the same /24 is over its network's share: closed before a byte is read.
        #expect(throws: ConnectionRejected.self) { try guarded.setup(channel: c, logger: Self.logger).wait() }
        #expect(!c.isActive)
        #expect(guardian.openConnections == 2)
        #expect(throws: Never.self) { try guarded.setup(channel: other, logger: Self.logger).wait() }
        #expect(guardian.openConnections == 3 && guardian.isNearCapacity)
        // The slot and the network's share come back when a connection closes.
        _ = try a.finish()
        #expect(guardian.openConnections == 2)
        let again = try Self.connection(from: "198.51.100.4")
        #expect(throws: Never.self) { try guarded.setup(channel: again, logger: Self.logger).wait() }
        #expect(guardian.openConnections(of: IPAddress("198.51.100.4")!) == 2)
    }

    @Test func aBannedNetworkIsClosedAtAccept() throws {
        let bans = BanList<NetworkKey>(capacity: 16)
        bans.ban(NetworkKey(IPAddress("198.51.100.7")!), forSeconds: 60)
        let guardian = ConnectionGuard(maxConnections: 10, bans: bans, trustedProxies: TrustedProxies([]))
        let channel = try Self.connection(from: "198.51.100.99")
        #expect(throws: ConnectionRejected.self) { try GuardedChannel(Application(), guard: guardian).setup(channel: channel, logger: Self.logger).wait() }
        #expect(guardian.openConnections == 0 && !channel.isActive)
    }

    @Test func theDrainDropsWhatArrivesAndClosesAtTheClientsEndOrPastItsBudget() throws {
        let channel = EmbeddedChannel(handler: LingeringClose.Drain(maxBytes: 100))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(repeating: 0x41, count: 60))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "dropped, not handed on")
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(repeating: 0x41, count: 41))
        #expect(!channel.isActive, "past the budget")

        let polite = EmbeddedChannel(handler: LingeringClose.Drain(maxBytes: 100))
        try polite.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try polite.writeInbound(ByteBuffer(repeating: 0x41, count: 10))
        polite.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!polite.isActive, "the client finished sending")
    }
}
