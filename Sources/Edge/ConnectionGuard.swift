public import IPAddress
import Metrics
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
/// cap, the cap per network (/24, /48), the upstream allowlist and the ban list. Also counts
/// open connections for the keep-alive policy.
///
/// A trusted proxy's peer address is never refused for a ban or the per-network cap: every
/// client behind it shares that address, so bans and limits are taken per request on the
/// client it names (`RequestAdmission`), never on the proxy.
public final class ConnectionGuard: Sendable {
    public enum Rejection: String, Sendable, Error {
        case capacity, allowlist, banned
        case networkCapacity = "network_capacity"
    }

    public let maxConnections: Int
    /// Concurrent connections one /24 (/48) may hold; 0 = no cap.
    public let maxConnectionsPerNetwork: Int
    /// Above this share of `maxConnections`, responses ask clients to close (no keep-alive).
    public let keepAliveThreshold: Int
    public let bans: BanList<NetworkKey>
    public let trustedProxies: TrustedProxies
    private let allowlist: Mutex<PrefixSet?>
    private let open = Atomic<Int>(0)
    private let perNetwork = Mutex<[NetworkKey: Int]>([:])
    private let openGauge = Gauge(label: "ipquest_connections_open")
    private let rejectedCounters: [Rejection: Counter] = [
        .capacity: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "capacity")]),
        .allowlist: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "allowlist")]),
        .banned: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "banned")]),
        .networkCapacity: Counter(label: "ipquest_connections_rejected_total", dimensions: [("reason", "network_capacity")]),
    ]

    public init(maxConnections: Int, maxConnectionsPerNetwork: Int = 0, allowlist: PrefixSet? = nil, bans: BanList<NetworkKey>,
                trustedProxies: TrustedProxies = TrustedProxies(), keepAliveShare: Double = 0.9) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerNetwork = maxConnectionsPerNetwork
        keepAliveThreshold = maxConnections > 0 ? Int(Double(maxConnections) * keepAliveShare) : Int.max
        self.allowlist = Mutex(allowlist)
        self.bans = bans
        self.trustedProxies = trustedProxies
    }

    /// Replaces the allowlist atomically (nil admits everyone).
    public func replaceAllowlist(_ set: PrefixSet?) { allowlist.withLock { $0 = set } }

    public var openConnections: Int { open.load(ordering: .relaxed) }
    public var isNearCapacity: Bool { open.load(ordering: .relaxed) >= keepAliveThreshold }

    /// Open connections of the network `peer` is in.
    public func openConnections(of peer: IPAddress) -> Int { perNetwork.withLock { $0[NetworkKey(peer)] ?? 0 } }

    /// What `admit` counted for a connection; hand it back to `closed`.
    public struct Admitted: Sendable {
        let network: NetworkKey?
    }

    /// Admits a connection (counting it) or says why not.
    public func admit(peer: IPAddress?) -> Result<Admitted, Rejection> {
        var network: NetworkKey?
        if let peer {
            if let list = allowlist.withLock({ $0 }), !list.contains(peer) { return .failure(reject(.allowlist)) }
            if !trustedProxies.contains(peer) {
                let key = NetworkKey(peer)
                if bans.isBanned(key) { return .failure(reject(.banned)) }
                if maxConnectionsPerNetwork > 0 {
                    let admitted = perNetwork.withLock { counts -> Bool in
                        let now = counts[key, default: 0]
                        guard now < maxConnectionsPerNetwork else { return false }
                        counts[key] = now + 1
                        return true
                    }
                    guard admitted else { return .failure(reject(.networkCapacity)) }
                    network = key
                }
            }
        } else if allowlist.withLock({ $0 }) != nil {
            return .failure(reject(.allowlist))
        }
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        if maxConnections > 0, now > maxConnections {
            open.wrappingSubtract(1, ordering: .relaxed)
            release(network)
            return .failure(reject(.capacity))
        }
        openGauge.record(now)
        return .success(Admitted(network: network))
    }

    public func closed(_ admitted: Admitted) {
        release(admitted.network)
        let now = open.wrappingSubtract(1, ordering: .relaxed).newValue
        openGauge.record(now)
    }

    private func release(_ network: NetworkKey?) {
        guard let network else { return }
        perNetwork.withLock { counts in
            let left = counts[network, default: 1] - 1
            counts[network] = left > 0 ? left : nil
        }
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
    public init(reason: ConnectionGuard.Rejection) { self.reason = reason }
}
