public import Edge
public import HummingbirdCore
public import Logging
public import NIOCore
import Synchronization

/// A server child channel whose implementation can be replaced while the server runs: each new
/// connection is set up by the implementation current at accept time, and keeps it. Used to
/// swap in a TLS channel built from renewed certificate files without a restart.
public struct ReloadableChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    public final class Slot: Sendable {
        private let base: Mutex<Base>
        public init(_ base: Base) { self.base = Mutex(base) }
        public var current: Base { base.withLock { $0 } }
        public func replace(_ new: Base) { base.withLock { $0 = new } }
    }

    public let slot: Slot

    public init(slot: Slot) { self.slot = slot }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        slot.current.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        // Any instance handles any value: they differ only in how new connections are set up.
        await slot.current.handle(value: value, logger: logger)
    }
}
