public import HTTPTypes
public import IPAddress
import Synchronization
import TextFormats

/// Where the client address comes from when the TCP peer is a trusted proxy: one source,
/// named by the operator, the way nginx's realip module names it (`real_ip_header`). Every
/// other forwarding header is ignored, so a client cannot pick a header the proxy passes
/// through untouched (nginx appends to `X-Forwarded-For` but forwards a client's own
/// `Forwarded` as it came).
public enum RealIPSource: String, Sendable, CaseIterable, Equatable {
    /// A list, read from the right: `client, proxy1, proxy2` (nginx `$proxy_add_x_forwarded_for`, HAProxy `option forwardfor`).
    case xForwardedFor = "x-forwarded-for"
    /// RFC 7239 `Forwarded: for=…`, read from the right (HAProxy `option forwarded`).
    case forwarded
    /// One address the proxy sets, replacing whatever the client sent (nginx `proxy_set_header X-Real-IP $remote_addr`).
    case xRealIP = "x-real-ip"
    /// Cloudflare's header: one address.
    case cfConnectingIP = "cf-connecting-ip"
    /// Fly.io's header: one address.
    case flyClientIP = "fly-client-ip"
    /// Akamai's and Cloudflare Enterprise's header: one address.
    case trueClientIP = "true-client-ip"
    /// The PROXY protocol header (v1 or v2) at the start of the connection; no HTTP header is read.
    case proxyProtocol = "proxy_protocol"

    /// The HTTP field this source reads, nil for PROXY protocol.
    public var field: HTTPField.Name? {
        switch self {
        case .xForwardedFor: return HTTPField.Name("X-Forwarded-For")!
        case .forwarded: return HTTPField.Name("Forwarded")!
        case .xRealIP: return HTTPField.Name("X-Real-IP")!
        case .cfConnectingIP: return HTTPField.Name("CF-Connecting-IP")!
        case .flyClientIP: return HTTPField.Name("Fly-Client-IP")!
        case .trueClientIP: return HTTPField.Name("True-Client-IP")!
        case .proxyProtocol: return nil
        }
    }

    /// Whether the field holds a chain of hops rather than one address.
    var isList: Bool { self == .xForwardedFor || self == .forwarded }

    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// The trusted proxies: configured CIDRs plus any published lists, swapped as a whole when a
/// list is refreshed. Read on every request, so a read is one lock and a table lookup.
public final class TrustedProxies: Sendable {
    private let set: Mutex<PrefixSet>
    private let empty: Atomic<Bool>

    public init(_ prefixes: [IPPrefix] = []) {
        set = Mutex(PrefixSet(prefixes))
        empty = Atomic(prefixes.isEmpty)
    }

    public func replace(_ prefixes: [IPPrefix]) {
        let new = PrefixSet(prefixes)
        set.withLock { $0 = new }
        empty.store(prefixes.isEmpty, ordering: .releasing)
    }

    public var isEmpty: Bool { empty.load(ordering: .acquiring) }

    public func contains(_ address: IPAddress) -> Bool {
        if isEmpty { return false }
        return set.withLock { $0.contains(address.unmapped) }
    }
}

/// Decides which address a request comes from.
///
/// The TCP peer (or the PROXY-announced source) is the client unless it is a trusted proxy.
/// Only then is the configured source read: a list from the right (nearest hop first), taking
/// the first address that is not itself a trusted proxy — a client can prepend anything it
/// likes, so nothing left of the first untrusted hop is believed — or a single address.
///
/// A request whose chain cannot be read to an untrusted hop (no header, `unknown`, an
/// obfuscated node, garbage, only trusted hops) is *unattributed*: it is never taken to come
/// from the proxy, so it can neither claim the proxy's address nor get the proxy's network
/// limited or banned.
public struct ClientAddressResolver: Sendable {
    public let trustedProxies: TrustedProxies
    public let source: RealIPSource

    public init(trustedProxies: TrustedProxies, source: RealIPSource = .xForwardedFor) {
        self.trustedProxies = trustedProxies
        self.source = source
    }

    public enum Resolution: Sendable, Equatable {
        /// The client's address.
        case client(IPAddress)
        /// A trusted proxy sent the request without saying, readably, for whom.
        case unattributed(proxy: IPAddress, reason: String)

        public var client: IPAddress? {
            if case .client(let address) = self { return address }
            return nil
        }
    }

    /// `peer` is the connection's client as the transport knows it: the TCP peer, or the
    /// source a trusted PROXY header announced.
    public func resolve(peer: IPAddress, fields: HTTPFields) -> Resolution {
        let peer = peer.unmapped
        guard trustedProxies.contains(peer) else { return .client(peer) }
        guard let name = source.field else {
            // PROXY protocol: the announced source was already substituted; a trusted address
            // here is the proxy itself (a LOCAL command, a health check).
            return .unattributed(proxy: peer, reason: "the trusted proxy \(peer) announced no client in its PROXY header")
        }
        let values = fields[values: name]
        guard !values.isEmpty else {
            return .unattributed(proxy: peer, reason: "the trusted proxy \(peer) sent no \(name.canonicalName) field")
        }
        let chain: [IPAddress?]
        switch source {
        case .xForwardedFor: chain = values.flatMap(Self.parseXForwardedFor)
        case .forwarded: chain = values.flatMap(Self.parseForwarded)
        default:
            // A single-address header: a proxy sets it once. Several values mean the client's
            // own copy came through, and which one is the proxy's cannot be told.
            guard values.count == 1 else {
                return .unattributed(proxy: peer, reason: "\(name.canonicalName) appears \(values.count) times")
            }
            chain = [Self.parseNode(Substring(values[0]))]
        }
        for hop in chain.reversed() {
            // A hop we cannot read ends the walk: everything beyond it is unverifiable.
            guard let hop = hop?.unmapped else {
                return .unattributed(proxy: peer, reason: "\(name.canonicalName) holds a hop that is not an address")
            }
            if !trustedProxies.contains(hop) { return .client(hop) }
        }
        return .unattributed(proxy: peer, reason: "\(name.canonicalName) names only trusted proxies")
    }

    /// `X-Forwarded-For: client, proxy1, proxy2`.
    static func parseXForwardedFor(_ value: String) -> [IPAddress?] {
        value.split(separator: ",", omittingEmptySubsequences: false).map { parseNode($0) }
    }

    /// `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"` (RFC 7239). Elements
    /// without `for=` are skipped; obfuscated or `unknown` nodes are unreadable (nil).
    static func parseForwarded(_ value: String) -> [IPAddress?] {
        var out: [IPAddress?] = []
        for element in value.split(separator: ",", omittingEmptySubsequences: false) {
            var node: IPAddress?? = .none
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                if parts[0].trimmingSpacesAndTabs.lowercased() == "for" {
                    // Two `for=` in one element: which one is meant cannot be told.
                    node = node == nil ? .some(parseNode(parts[1])) : .some(nil)
                }
            }
            if let node { out.append(node) }
        }
        return out
    }

    /// One node: an address, optionally quoted, bracketed (IPv6) and with a port.
    static func parseNode(_ raw: Substring) -> IPAddress? {
        var text = raw.trimmingSpacesAndTabs
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
            text = text.dropFirst().dropLast()
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let inner = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.count > 1 && rest.dropFirst().allSatisfy(\.isASCIIDigit)) else { return nil }
            return IPv6Address(inner).map(IPAddress.v6)
        }
        if let v4 = IPv4Address(text) { return .v4(v4) }
        // IPv4 with a port.
        if let colon = text.firstIndex(of: ":"), text[colon...].count > 1, text[colon...].dropFirst().allSatisfy(\.isASCIIDigit),
           text.filter({ $0 == ":" }).count == 1, let v4 = IPv4Address(text[..<colon]) {
            return .v4(v4)
        }
        return IPv6Address(text).map(IPAddress.v6)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

