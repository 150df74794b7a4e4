import Synchronization

/// Counts work in progress and refuses more than `limit` at once (0 = unlimited). Refusing at
/// once instead of queueing keeps the latency of admitted work flat under overload.
public final class InFlightLimiter: Sendable {
    public let limit: Int
    private let current = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot if one is free.
    public func tryAcquire() -> Bool {
        let now = current.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        if limit > 0, now > limit {
            current.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            refused.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }

    public func release() {
        current.wrappingSubtract(1, ordering: .acquiringAndReleasing)
    }

    public var inFlight: Int { current.load(ordering: .relaxed) }
    public var refusedCount: Int { refused.load(ordering: .relaxed) }
}

/// A bounded set of banned networks with expiry. Full means the soonest-expiring entry goes.
public final class BanList<Key: Hashable & Sendable>: Sendable {
    private let entries = Mutex<[Key: UInt64]>([:])
    public let capacity: Int
    private let clock: @Sendable () -> UInt64

    public init(capacity: Int, clock: @escaping @Sendable () -> UInt64 = TokenBucketLimiter<Int>.monotonicNanoseconds) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.clock = clock
    }

    public func ban(_ key: Key, forSeconds seconds: Double) {
        let until = clock() + UInt64(seconds * 1e9)
        entries.withLock { map in
            if map[key] == nil, map.count >= capacity {
                let now = clock()
                map = map.filter { $0.value > now }
                if map.count >= capacity, let soonest = map.min(by: { $0.value < $1.value }) {
                    map.removeValue(forKey: soonest.key)
                }
            }
            map[key] = max(map[key] ?? 0, until)
        }
    }

    public func isBanned(_ key: Key) -> Bool {
        let now = clock()
        return entries.withLock { map in
            guard let until = map[key] else { return false }
            if until <= now {
                map.removeValue(forKey: key)
                return false
            }
            return true
        }
    }

    public var count: Int { entries.withLock { $0.count } }
}
