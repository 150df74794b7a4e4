public import IPAddress

/// Decides which address a request comes from.
///
/// The TCP peer is the client unless the peer is a trusted proxy. Only then are forwarding
/// headers read, walking the chain from the right (nearest hop) and taking the first address
/// that is not itself a trusted proxy. A client can prepend anything it likes to these
/// headers, so nothing left of the first untrusted hop is ever believed.
public struct ClientAddressResolver: Sendable {
    public var trustedProxies: PrefixSet

    public init(trustedProxies: PrefixSet) {
        self.trustedProxies = trustedProxies
    }

    /// The forwarding headers of one request, as raw field values in arrival order.
    public struct ForwardingHeaders: Sendable {
        public var forwarded: [String] = []
        public var xForwardedFor: [String] = []
        public var xRealIP: [String] = []
        public init(forwarded: [String] = [], xForwardedFor: [String] = [], xRealIP: [String] = []) {
            self.forwarded = forwarded
            self.xForwardedFor = xForwardedFor
            self.xRealIP = xRealIP
        }
    }

    public func resolve(peer: IPAddress, headers: ForwardingHeaders) -> IPAddress {
        let peer = peer.unmapped
        guard trustedProxies.contains(peer) else { return peer }
        // One header family decides; RFC 7239 first, then the de-facto ones.
        let chain: [IPAddress?]
        if !headers.forwarded.isEmpty {
            chain = headers.forwarded.flatMap(Self.parseForwarded)
        } else if !headers.xForwardedFor.isEmpty {
            chain = headers.xForwardedFor.flatMap(Self.parseXForwardedFor)
        } else if let real = headers.xRealIP.last {
            chain = [Self.parseNode(Substring(real))]
        } else {
            return peer
        }
        var nearestTrusted = peer
        for hop in chain.reversed() {
            // A hop we cannot read ends the walk: everything beyond it is unverifiable.
            guard let hop = hop?.unmapped else { return nearestTrusted }
            if !trustedProxies.contains(hop) { return hop }
            nearestTrusted = hop
        }
        return nearestTrusted
    }

    /// `X-Forwarded-For: client, proxy1, proxy2`.
    static func parseXForwardedFor(_ value: String) -> [IPAddress?] {
        value.split(separator: ",", omittingEmptySubsequences: false).map { parseNode($0) }
    }

    /// `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"` (RFC 7239). Elements
    /// without `for=` are skipped; obfuscated or `unknown` nodes are unreadable (nil).
    static func parseForwarded(_ value: String) -> [IPAddress?] {
        var out: [IPAddress?] = []
        for element in value.split(separator: ",") {
            var node: IPAddress?? = .none
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                if parts[0].trimmingSpaces.lowercased() == "for" {
                    node = .some(parseNode(parts[1]))
                }
            }
            if let node { out.append(node) }
        }
        return out
    }

    /// One node: an address, optionally quoted, bracketed (IPv6) and with a port.
    static func parseNode(_ raw: Substring) -> IPAddress? {
        var text = raw.trimmingSpaces
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
            text = text.dropFirst().dropLast()
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let inner = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            return IPv6Address(inner).map(IPAddress.v6)
        }
        if let v4 = IPv4Address(text) { return .v4(v4) }
        // IPv4 with a port.
        if let colon = text.firstIndex(of: ":"), text[colon...].dropFirst().allSatisfy(\.isNumber),
           text.filter({ $0 == ":" }).count == 1, let v4 = IPv4Address(text[..<colon]) {
            return .v4(v4)
        }
        return IPv6Address(text).map(IPAddress.v6)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
