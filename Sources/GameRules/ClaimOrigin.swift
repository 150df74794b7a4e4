public import IPAddress

/// Where a claimed address sits on the Internet, looked up once when the claim is made and
/// stored with it: its country and autonomous system (from the location database) and, when it
/// belongs to a cloud provider's published ranges, that provider.
public struct ClaimOrigin: Hashable, Sendable {
    /// ISO 3166-1 alpha-2 code in upper case, or nil when unknown.
    public var country: String?
    /// Autonomous system number, or nil when unknown.
    public var asn: UInt32?
    /// The cloud provider whose published ranges hold the address ("aws", "gcp", …); nil for
    /// addresses outside every data-center range (residential, as far as we know).
    public var provider: String?

    public init(country: String? = nil, asn: UInt32? = nil, provider: String? = nil) {
        self.country = country.flatMap(Self.normalizedCountry)
        self.asn = asn == 0 ? nil : asn
        self.provider = provider.flatMap { $0.isEmpty ? nil : $0 }
    }

    public static let unknown = ClaimOrigin()

    /// Two ASCII letters in upper case, or nil. Runs for every claim and every stored row
    /// loaded, so it allocates only when it has to upper-case.
    public static func normalizedCountry(_ text: String) -> String? {
        var bytes = text.utf8.makeIterator()
        guard let a = bytes.next(), let b = bytes.next(), bytes.next() == nil else { return nil }
        func isUpper(_ c: UInt8) -> Bool { c >= 65 && c <= 90 }
        func isLower(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }
        guard isUpper(a) || isLower(a), isUpper(b) || isLower(b) else { return nil }
        return isUpper(a) && isUpper(b) ? text : text.uppercased()
    }
}

/// Looks up the origin of a claimed address. The server's implementation reads the location
/// database and the cloud ranges; tests and tools may supply their own.
public protocol ClaimOriginLookup: Sendable {
    func origin(of address: IPv4Address) -> ClaimOrigin
}
