public import HummingbirdCore
public import IPAddress
public import Logging
import Metrics
public import NIOCore
import Synchronization

/// Network key for per-network limits and bans: an IPv4 /24 or an IPv6 /48.
public enum NetworkKey: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt64)

    public init(_ address: IPAddress) {
        switch address.unmapped {
        case .v4(let a): self = .v4(a.value & 0xFFFF_FF00)
        case .v6(let a): self = .v6(a.high & 0xFFFF_FFFF_FFFF_0000)
        }
    }

    public var description: String {
        switch self {
        case .v4(let v): return "\(IPv4Address(v))/24"
        case .v6(let v): return "\(IPv6Address(high: v, low: 0))/48"
        }
    }
}

/// Decisions taken when a connection is accepted, before any byte is read: the connection
/// cap, the upstream allowlist and the ban list. Also counts open connections for the
/// keep-alive policy.
public final class ConnectionGuard: Sendable {
    public enum Rejection: String, Sendable {
        case capacity, allowlist, banned
    }

    public let maxConnections: Int
    /// Above this share of `maxConnections`, responses ask clients to close (no keep-alive).
    public let keepAliveThreshold: Int
    public let bans: BanList<NetworkKey>
    private let allowlist: Mutex<PrefixSet?>
    private let open = Atomic<Int>(0)
    private let openGauge = Gauge(label: "ipquest_connections_open")
    private let rejectedCounters: [Rejection: Counter] = [
        .capacity: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "capacity")]),
        .allowlist: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "allowlist")]),
        .banned: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "banned")]),
    ]

    public init(maxConnections: Int, allowlist: PrefixSet? = nil, bans: BanList<NetworkKey>, keepAliveShare: Double = 0.9) {
        self.maxConnections = maxConnections
        keepAliveThreshold = maxConnections > 0 ? Int(Double(maxConnections) * keepAliveShare) : Int.max
        self.allowlist = Mutex(allowlist)
        self.bans = bans
    }

    /// Replaces the allowlist atomically (nil admits everyone).
    public func replaceAllowlist(_ set: PrefixSet?) { allowlist.withLock { $0 = set } }

    public var openConnections: Int { open.load(ordering: .relaxed) }
    public var isNearCapacity: Bool { open.load(ordering: .relaxed) >= keepAliveThreshold }

    /// Admits a connection (counting it) or says why not.
    public func admit(peer: IPAddress?) -> Rejection? {
        if let peer {
            if let list = allowlist.withLock({ $0 }), !list.contains(peer) { return reject(.allowlist) }
            if bans.isBanned(NetworkKey(peer)) { return reject(.banned) }
        } else if allowlist.withLock({ $0 }) != nil {
            return reject(.allowlist)
        }
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        if maxConnections > 0, now > maxConnections {
            open.wrappingSubtract(1, ordering: .relaxed)
            return reject(.capacity)
        }
        openGauge.record(now)
        return nil
    }

    public func closed() {
        let now = open.wrappingSubtract(1, ordering: .relaxed).newValue
        openGauge.record(now)
    }

    private func reject(_ r: Rejection) -> Rejection {
        rejectedCounters[r]?.increment()
        return r
    }
}

/// The error a refused connection's setup fails with (Hummingbird then drops the channel).
public struct ConnectionRejected: Error, CustomStringConvertible {
    public var reason: ConnectionGuard.Rejection
    public var description: String { "connection rejected: \(reason.rawValue)" }
}

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
        if let rejection = guardian.admit(peer: peer) {
            logger.debug("connection refused", metadata: ["reason": "\(rejection.rawValue)", "peer": "\(peer.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ConnectionRejected(reason: rejection))
        }
        let guardian = self.guardian
        channel.closeFuture.whenComplete { _ in guardian.closed() }
        return base.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
