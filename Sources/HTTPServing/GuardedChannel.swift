public import Edge
public import HummingbirdCore
public import IPAddress
public import Logging
public import NIOCore

/// Wraps a Hummingbird child channel so the guard decides at accept time, before any read.
public struct GuardedChannel<BaseChannel: ServerChildChannel>: ServerChildChannel {
    public typealias Value = BaseChannel.Value

    let base: BaseChannel
    let guardian: ConnectionGuard

    public init(_ base: BaseChannel, guard guardian: ConnectionGuard) {
        self.base = base
        self.guardian = guardian
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let peer = channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
        let admitted: ConnectionGuard.Admitted
        switch guardian.admit(peer: peer) {
        case .failure(let rejection):
            logger.debug("connection refused", metadata: ["reason": "\(rejection.rawValue)", "peer": "\(peer.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ConnectionRejected(reason: rejection))
        case .success(let a):
            admitted = a
        }
        let guardian = self.guardian
        channel.closeFuture.whenComplete { _ in guardian.closed(admitted) }
        return base.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
