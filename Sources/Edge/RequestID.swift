public import HTTPTypes
import Synchronization

/// `X-Request-ID`: a client's own id when it is short and plain, else one made here. Every
/// response carries it and every log line of the request names it.
public enum RequestID {
    public static let field = HTTPField.Name("X-Request-ID")!

    /// A client's id, accepted when it is short and plain (so it cannot inject into logs).
    public static func acceptable(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 64,
              value.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return nil }
        return value
    }

    /// A process-random prefix and a counter, as 16 hex digits: unique per process, no
    /// syscall per request (a random number per request cost a getrandom(2) call each).
    public static func next() -> String {
        let n = Source.shared.next()
        return String(unsafeUninitializedCapacity: 16) { out in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<16 { out[i] = digits.utf8Start[Int((n >> UInt64(60 - 4 * i)) & 0xF)] }
            return 16
        }
    }

    /// 32 random bits chosen at start, then a counter.
    final class Source: Sendable {
        static let shared = Source()
        private let counter = Atomic<UInt64>(0)
        private let prefix = UInt64(UInt32.random(in: 0...UInt32.max)) << 32

        func next() -> UInt64 {
            prefix | (counter.wrappingAdd(1, ordering: .relaxed).newValue & 0xFFFF_FFFF)
        }
    }
}
