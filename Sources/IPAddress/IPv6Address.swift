/// An IPv6 address held as two 64-bit big-endian halves.
public struct IPv6Address: Hashable, Comparable, Sendable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The IPv4-mapped form `::ffff:a.b.c.d`.
    public init(ipv4Mapped v4: IPv4Address) {
        high = 0
        low = 0xFFFF_0000_0000 | UInt64(v4.value)
    }

    /// The embedded IPv4 address if this is `::ffff:a.b.c.d`, otherwise nil.
    public var ipv4Mapped: IPv4Address? {
        guard high == 0, low >> 32 == 0xFFFF else { return nil }
        return IPv4Address(UInt32(truncatingIfNeeded: low))
    }

    /// The sixteen bytes in network order.
    public var bytes: [UInt8] {
        (0..<16).map { i in
            let half = i < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * (i % 8)))
        }
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        high = h
        low = l
    }

    /// The eight 16-bit groups.
    public var groups: [UInt16] {
        (0..<8).map { i in
            let half = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> UInt64(48 - 16 * (i % 4)))
        }
    }

    public init(groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address has eight groups")
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(groups[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(groups[i]) }
        high = h
        low = l
    }

    /// RFC 4291 text forms: hex groups of 1–4 digits, at most one `::`, an optional trailing
    /// dotted quad. Zone identifiers (`%eth0`) and brackets are rejected.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawDoubleColon = false
        var i = 0
        if utf8.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            sawDoubleColon = true
            i = 2
            if i == utf8.count { self.init(high: 0, low: 0); return }
        } else if utf8[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < utf8.count {
            // Read one group, or a trailing dotted quad.
            var j = i
            var value: UInt32 = 0
            while j < utf8.count, let digit = IPv6Address.hexValue(utf8[j]) {
                value = value << 4 | UInt32(digit)
                j += 1
                if j - i > 4 { break }
            }
            if j < utf8.count, utf8[j] == UInt8(ascii: ".") {
                // Embedded IPv4 in the last 32 bits.
                guard let v4 = utf8[i...].withUnsafeBufferPointer({ IPv4Address(utf8: $0) }) else { return nil }
                let groups = [UInt16(v4.value >> 16), UInt16(truncatingIfNeeded: v4.value)]
                if sawDoubleColon { tail += groups } else { head += groups }
                i = utf8.count
                break
            }
            let length = j - i
            guard length >= 1, length <= 4 else { return nil }
            if sawDoubleColon { tail.append(UInt16(value)) } else { head.append(UInt16(value)) }
            i = j
            if i == utf8.count { break }
            guard utf8[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if i < utf8.count, utf8[i] == UInt8(ascii: ":") {
                guard !sawDoubleColon else { return nil }
                sawDoubleColon = true
                i += 1
                if i == utf8.count { break }
            } else if i == utf8.count {
                return nil // trailing single colon
            }
        }
        let total = head.count + tail.count
        if sawDoubleColon {
            guard total <= 7 else { return nil }
            self.init(groups: head + Array(repeating: 0, count: 8 - total) + tail)
        } else {
            guard total == 8 else { return nil }
            self.init(groups: head)
        }
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    public static let any = IPv6Address(high: 0, low: 0)
    public static let loopback = IPv6Address(high: 0, low: 1)
}

extension IPv6Address: CustomStringConvertible, LosslessStringConvertible {
    /// RFC 5952 canonical text: lower case, the longest run (≥ 2) of zero groups as `::`
    /// (the first on a tie), and IPv4-mapped addresses as `::ffff:a.b.c.d`.
    public var description: String {
        if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
        let g = groups
        var bestStart = -1, bestLength = 0
        var runStart = -1
        for index in 0...8 {
            if index < 8, g[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                let length = index - runStart
                if length > bestLength, length >= 2 { bestStart = runStart; bestLength = length }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(g[$0], radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
