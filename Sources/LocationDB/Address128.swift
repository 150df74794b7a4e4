import IPAddress

/// A 128-bit address (as libloc keys everything: IPv4 lives at `::ffff:a.b.c.d`), with the
/// little arithmetic the enumerations need. `UInt128` is avoided so the module still builds
/// for macOS 14.
struct Address128: Hashable, Comparable, Sendable {
    var high: UInt64
    var low: UInt64

    static let zero = Address128(high: 0, low: 0)
    static let max = Address128(high: .max, low: .max)
    /// `::ffff:0.0.0.0` and `::ffff:255.255.255.255`.
    static let ipv4First = Address128(high: 0, low: 0xFFFF_0000_0000)
    static let ipv4Last = Address128(high: 0, low: 0xFFFF_FFFF_FFFF)

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ address: IPv6Address) { self.init(high: address.high, low: address.low) }
    init(_ address: IPv4Address) { self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(address.value)) }

    static func < (a: Address128, b: Address128) -> Bool { (a.high, a.low) < (b.high, b.low) }

    /// The bit at `index` (0 = most significant).
    @inline(__always)
    func bit(_ index: Int) -> UInt64 {
        index < 64 ? (high >> UInt64(63 - index)) & 1 : (low >> UInt64(127 - index)) & 1
    }

    @inline(__always)
    mutating func setBit(_ index: Int) {
        if index < 64 { high |= 1 << UInt64(63 - index) } else { low |= 1 << UInt64(127 - index) }
    }

    /// Keeps the first `length` bits.
    func masked(_ length: Int) -> Address128 {
        let (mh, ml) = IPv6Prefix.mask(UInt8(length))
        return Address128(high: high & mh, low: low & ml)
    }

    /// The last address of the `length`-bit network starting here.
    func lastAddress(_ length: Int) -> Address128 {
        let (mh, ml) = IPv6Prefix.mask(UInt8(length))
        return Address128(high: high | ~mh, low: low | ~ml)
    }

    /// `self + 1`, wrapping to zero past the end.
    var successor: Address128 {
        low == .max ? Address128(high: high &+ 1, low: 0) : Address128(high: high, low: low + 1)
    }

    /// `self - 1`, wrapping past zero.
    var predecessor: Address128 {
        low == 0 ? Address128(high: high &- 1, low: .max) : Address128(high: high, low: low - 1)
    }

    var trailingZeroBitCount: Int {
        if low != 0 { return low.trailingZeroBitCount }
        if high != 0 { return 64 + high.trailingZeroBitCount }
        return 128
    }

    /// True inside `::ffff:0:0/96`.
    var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }

    var ipv6: IPv6Address { IPv6Address(high: high, low: low) }

    /// The prefix for a network at tree depth `depth` starting here, as libloc reports it.
    func prefix(depth: Int) -> IPPrefix {
        if depth >= 96, isIPv4Mapped {
            return .v4(IPv4Prefix(IPv4Address(UInt32(truncatingIfNeeded: low)), length: UInt8(depth - 96)))
        }
        return .v6(IPv6Prefix(ipv6, length: UInt8(depth)))
    }
}

/// Splits the inclusive range `first...last` into the fewest aligned networks, ascending
/// (what libloc's `loc_network_list_summarize` does). Returns `(start, prefixLength)` pairs.
func summarizeRange(_ first: Address128, _ last: Address128, _ body: (Address128, Int) throws -> Void) rethrows {
    var start = first
    while true {
        // Largest block aligned at `start`...
        var bits = start.trailingZeroBitCount
        // ...that does not pass `last`: shrink until start + 2^bits - 1 <= last.
        while bits > 0 {
            let end = start.lastAddress(128 - bits)
            if end <= last { break }
            bits -= 1
        }
        try body(start, 128 - bits)
        let end = start.lastAddress(128 - bits)
        if end >= last { return }
        start = end.successor
    }
}

enum LocationFormatting {
    /// Text of an address the way glibc's `inet_ntop` writes it: RFC 5952 compression, and the
    /// embedded dotted quad for `::a.b.c.d` (IPv4-compatible) and `::ffff:a.b.c.d`.
    static func text(of address: IPv6Address) -> String {
        if address.high == 0, address.low >> 32 == 0, (address.low >> 16) & 0xFFFF != 0 {
            return "::" + IPv4Address(UInt32(truncatingIfNeeded: address.low)).description
        }
        return address.description
    }

    static func text(of prefix: IPPrefix) -> String {
        switch prefix {
        case .v4(let p): return p.description
        case .v6(let p): return text(of: p.network) + "/" + String(p.length)
        }
    }
}
