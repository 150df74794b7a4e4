/// Either family of address.
public enum IPAddress: Hashable, Sendable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses a dotted quad or an IPv6 text form (strictly; see the two families).
    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// Folds IPv4-mapped IPv6 (`::ffff:a.b.c.d`) into plain IPv4; other values are unchanged.
    /// Dual-stack sockets report IPv4 peers in the mapped form.
    public var unmapped: IPAddress {
        if case .v6(let v6) = self, let v4 = v6.ipv4Mapped { return .v4(v4) }
        return self
    }

    /// The IPv4 address, also when written in the IPv4-mapped IPv6 form.
    public var ipv4: IPv4Address? {
        switch unmapped {
        case .v4(let v4): return v4
        case .v6: return nil
        }
    }

    /// The address as IPv6, mapping IPv4 into `::ffff:0:0/96` (how libloc stores IPv4).
    public var asIPv6: IPv6Address {
        switch self {
        case .v4(let v4): return IPv6Address(ipv4Mapped: v4)
        case .v6(let v6): return v6
        }
    }

    public var isIPv4: Bool { ipv4 != nil }
}

extension IPAddress: CustomStringConvertible, LosslessStringConvertible {
    public var description: String {
        switch self {
        case .v4(let a): return a.description
        case .v6(let a): return a.description
        }
    }
}

extension IPAddress: Comparable {
    /// IPv4 sorts before IPv6; within a family by value.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v6(let a), .v6(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }
}
