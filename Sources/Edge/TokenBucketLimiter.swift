import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Token buckets keyed by network (an IPv4 /24, an IPv6 /48, …), with bounded memory.
///
/// Each key starts with `burst` tokens and regains `refillPerSecond` per second up to `burst`.
/// A bucket that has refilled completely is indistinguishable from a new one, so idle buckets
/// are dropped when the table grows; the table never holds more than `capacity` keys. When it is
/// full of busy buckets, unknown keys are refused (fail closed) rather than evicting a busy one,
/// which would hand an attacker a fresh bucket.
public final class TokenBucketLimiter<Key: Hashable & Sendable>: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var burst: Int
        public var refillPerSecond: Double
        public var capacity: Int
        public init(burst: Int = 127, refillPerSecond: Double = 1, capacity: Int = 1 << 20) {
            self.burst = burst
            self.refillPerSecond = refillPerSecond
            self.capacity = capacity
        }
    }

    public enum Decision: Equatable, Sendable {
        case allowed(remaining: Int)
        /// Refused; a token will be available after this many seconds (rounded up, ≥ 1).
        case limited(retryAfter: Int)
    }

    private struct Bucket {
        var tokens: Double
        var updatedAt: UInt64 // nanoseconds, monotonic
    }

    private struct Shard {
        var buckets: [Key: Bucket] = [:]
    }

    /// Mutex is non-copyable, so each shard's lock lives in a small box.
    private final class LockedShard: Sendable {
        let mutex = Mutex(Shard())
    }

    public let configuration: Configuration
    private let shards: [LockedShard]
    private let clock: @Sendable () -> UInt64

    /// - Parameter clock: monotonic nanoseconds; injectable for tests.
    public init(configuration: Configuration, clock: @escaping @Sendable () -> UInt64 = TokenBucketLimiter.monotonicNanoseconds) {
        precondition(configuration.burst >= 1 && configuration.refillPerSecond > 0 && configuration.capacity >= 16)
        self.configuration = configuration
        shards = (0..<16).map { _ in LockedShard() }
        self.clock = clock
    }

    public static func monotonicNanoseconds() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds // CLOCK_MONOTONIC
    }

    /// Takes `cost` tokens from the bucket of `key` if it has them.
    /// (Specialized for network keys: callers in other modules otherwise ran the generic body,
    /// which looked up type metadata on every claim.)
    @_specialize(exported: true, where Key == NetworkKey)
    public func acquire(_ key: Key, cost: Int = 1) -> Decision {
        let now = clock()
        let burst = Double(configuration.burst)
        let rate = configuration.refillPerSecond
        let perShardCapacity = configuration.capacity / shards.count
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
        return shard.mutex.withLock { shard -> Decision in
            let price = Double(cost)
            // A known key is found once and updated through its index: one hash per call.
            if let index = shard.buckets.index(forKey: key) {
                let existing = shard.buckets.values[index]
                let elapsed = Double(now &- existing.updatedAt) / 1e9
                let (left, decision) = Self.charge(min(burst, existing.tokens + elapsed * rate), price: price, rate: rate)
                shard.buckets.values[index] = Bucket(tokens: left, updatedAt: now)
                return decision
            }
            if shard.buckets.count >= perShardCapacity {
                Self.dropRefilled(&shard.buckets, now: now, burst: burst, rate: rate)
                if shard.buckets.count >= perShardCapacity {
                    return .limited(retryAfter: max(1, Int((burst / rate).rounded(.up))))
                }
            }
            let (left, decision) = Self.charge(burst, price: price, rate: rate)
            shard.buckets[key] = Bucket(tokens: left, updatedAt: now)
            return decision
        }
    }

    /// Takes `price` from `tokens` if there are enough: the tokens left and the decision.
    private static func charge(_ tokens: Double, price: Double, rate: Double) -> (Double, Decision) {
        if tokens >= price { return (tokens - price, .allowed(remaining: Int(tokens - price))) }
        return (tokens, .limited(retryAfter: max(1, Int(((price - tokens) / rate).rounded(.up)))))
    }

    private static func dropRefilled(_ buckets: inout [Key: Bucket], now: UInt64, burst: Double, rate: Double) {
        buckets = buckets.filter { _, b in
            b.tokens + Double(now &- b.updatedAt) / 1e9 * rate < burst
        }
    }

    /// The whole tokens `key` has now, taking none (ipv4.games' `/statusz` "yourtokens").
    public func tokens(_ key: Key) -> Int {
        let now = clock()
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
        let burst = Double(configuration.burst)
        guard let bucket = shard.mutex.withLock({ $0.buckets[key] }) else { return configuration.burst }
        return Int(min(burst, bucket.tokens + Double(now &- bucket.updatedAt) / 1e9 * configuration.refillPerSecond))
    }

    /// Number of keys held (for metrics and tests).
    public var count: Int { shards.reduce(0) { $0 + $1.mutex.withLock { $0.buckets.count } } }

    /// Drops every bucket that has refilled completely.
    public func sweep() {
        let now = clock()
        for shard in shards {
            shard.mutex.withLock { Self.dropRefilled(&$0.buckets, now: now, burst: Double(configuration.burst), rate: configuration.refillPerSecond) }
        }
    }
}
