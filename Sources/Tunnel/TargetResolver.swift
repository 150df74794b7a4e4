import Synchronization
public import NIOCore
public import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a target host name into addresses. Tests pass their own so that no query leaves the machine.
public protocol TargetNameResolver: Sendable {
    func resolve(host: String, port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]>
}

public struct NameResolutionError: Error, CustomStringConvertible, Sendable {
    public let host: String
    public let reason: String
    public init(host: String, reason: String) {
        self.host = host
        self.reason = reason
    }
    public var description: String { "cannot resolve \(host): \(reason)" }
}

/// `getaddrinfo(3)` on NIO's blocking thread pool, so the event loops never block on DNS.
public struct SystemNameResolver: TargetNameResolver {
    private let threadPool: NIOThreadPool

    public init(threadPool: NIOThreadPool = .singleton) {
        self.threadPool = threadPool
    }

    public func resolve(host: String, port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]> {
        threadPool.runIfActive(eventLoop: eventLoop) {
            try Self.getaddrinfoBlocking(host: host, port: port)
        }
    }

    static func getaddrinfoBlocking(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw NameResolutionError(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let sockaddrPointer = info.pointee.ai_addr {
                switch info.pointee.ai_family {
                case AF_INET:
                    let v4 = sockaddrPointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
                    addresses.append(SocketAddress(v4, host: host))
                case AF_INET6:
                    let v6 = sockaddrPointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
                    addresses.append(SocketAddress(v6, host: host))
                default:
                    break
                }
            }
            cursor = info.pointee.ai_next
        }
        // getaddrinfo lists one entry per socket type unless hinted; keep each address once, in order.
        var seen: Set<SocketAddress> = []
        addresses = addresses.filter { seen.insert($0).inserted }
        guard !addresses.isEmpty else { throw NameResolutionError(host: host, reason: "no addresses") }
        return addresses
    }
}

/// Caches another resolver's answers for `ttl`. Expired entries are evicted on access and the cache never
/// holds more than `capacity` names (the entries closest to expiry go first).
public final class CachingNameResolver: TargetNameResolver {
    private struct Entry {
        var addresses: [SocketAddress]
        var expires: NIODeadline
    }

    private let upstream: any TargetNameResolver
    private let ttl: TimeAmount
    private let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(upstream: any TargetNameResolver, ttl: Duration, capacity: Int = 4096) {
        self.upstream = upstream
        self.ttl = TimeAmount(ttl)
        self.capacity = max(1, capacity)
    }

    public var count: Int { entries.withLock { $0.count } }

    public func resolve(host: String, port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]> {
        let key = "\(host)|\(port)"
        let now = NIODeadline.now()
        if ttl > .zero, let cached = entries.withLock({ table -> [SocketAddress]? in
            guard let entry = table[key] else { return nil }
            if entry.expires <= now {
                table[key] = nil
                return nil
            }
            return entry.addresses
        }) {
            return eventLoop.makeSucceededFuture(cached)
        }
        let future = upstream.resolve(host: host, port: port, on: eventLoop)
        guard ttl > .zero else { return future }
        let ttl = self.ttl
        let capacity = self.capacity
        return future.map { [self] addresses in
            let now = NIODeadline.now()
            self.entries.withLock { table in
                if table.count >= capacity {
                    table = table.filter { $0.value.expires > now }
                    while table.count >= capacity, let soonest = table.min(by: { $0.value.expires < $1.value.expires }) {
                        table[soonest.key] = nil
                    }
                }
                table[key] = Entry(addresses: addresses, expires: now + ttl)
            }
            return addresses
        }
    }
}

// Durations become TimeAmounts through NIO's `TimeAmount.init(_: Duration)`, which saturates at 2^63 ns (about
// 292 years). This module once declared its own, which shadowed NIO's and trapped on `seconds * 10^9` for a
// configuration value of a few centuries.
