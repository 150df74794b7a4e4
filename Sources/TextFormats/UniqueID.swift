import Synchronization

/// Process-unique 64-bit ids written as 16 lowercase hex digits: the `X-Request-ID` a server
/// makes when a client sends none, and the tunnel's `tunnel_id`. 32 random bits chosen at
/// start, then a counter: unique within a process, distinct between processes with high
/// probability, and no system call per id (a random number per id cost a getrandom(2) each).
public enum UniqueID {
    private static let counter = Atomic<UInt64>(0)
    private static let prefix = UInt64(UInt32.random(in: 0...UInt32.max)) << 32

    public static func next() -> UInt64 {
        prefix | (counter.wrappingAdd(1, ordering: .relaxed).newValue & 0xFFFF_FFFF)
    }

    /// A new id as 16 hex digits.
    public static func nextHex() -> String { hex(next()) }

    /// 16 lowercase hex digits (`String(_:radix:)` takes the generic path, about 1 µs).
    public static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<16 { out[i] = digits.utf8Start[Int((value >> UInt64(60 - 4 * i)) & 0xF)] }
            return 16
        }
    }
}
