public import IPAddress

/// How bytes read from one side of a tunnel are relayed to the other side.
///
/// `client_connection.relay_policy` governs bytes read from the client (client → target);
/// `target_connection.relay_policy` governs bytes read from the target (target → client).
public struct RelayPolicy: Sendable, Equatable {
    /// The tunnel ends when neither direction has carried a byte for this long. `nil`: no limit.
    /// The tunnel's idle limit is the smaller of the two directions' values.
    public var idleTimeout: Duration?
    /// A policy's idle limit unless it says otherwise: without one, a client that opens tunnels and leaves them
    /// silent holds two sockets each for ever.
    public static let defaultIdleTimeout: Duration = .seconds(60)
    /// A direction that, after `minRateGracePeriod`, averages fewer bytes per minute than this ends the
    /// tunnel ("too slow"). Checked whenever that direction carries bytes. 0: no check.
    public var minRateBytesPerMinute: UInt64
    /// Token-bucket throttle for this direction, bytes per second. `nil`: unthrottled.
    public var maxRateBytesPerSecond: UInt64?
    /// The tunnel ends this long after it was established. `nil`: no limit.
    public var maxLifetime: Duration?
    /// At most this many bytes are relayed in this direction; the tunnel ends when the cap is hit. `nil`: no cap.
    public var maxTotalPayload: UInt64?
    /// How long a tunnel runs before `minRateBytesPerMinute` is enforced.
    public var minRateGracePeriod: Duration

    public init(
        idleTimeout: Duration? = RelayPolicy.defaultIdleTimeout,
        minRateBytesPerMinute: UInt64 = 0,
        maxRateBytesPerSecond: UInt64? = nil,
        maxLifetime: Duration? = nil,
        maxTotalPayload: UInt64? = nil,
        minRateGracePeriod: Duration = .seconds(30)
    ) {
        self.idleTimeout = idleTimeout
        self.minRateBytesPerMinute = minRateBytesPerMinute
        self.maxRateBytesPerSecond = maxRateBytesPerSecond
        self.maxLifetime = maxLifetime
        self.maxTotalPayload = maxTotalPayload
        self.minRateGracePeriod = minRateGracePeriod
    }

    /// No limits at all (not even the default idle timeout).
    public static let unlimited = RelayPolicy(idleTimeout: nil)

    /// The default policy: no limit but the idle timeout.
    public static let standard = RelayPolicy()
}

/// Users accepted in `Proxy-Authorization: Basic`.
public struct ProxyAuthorization: Sendable, Equatable {
    public var realm: String
    /// user name → password.
    public var users: [String: String]

    public init(realm: String = "ipquest", users: [String: String]) {
        self.realm = realm
        self.users = users
    }
}

/// The target-side rules: which targets may be reached and how.
public struct TargetConnectionConfiguration: Sendable {
    public var dnsCacheTTL: Duration
    /// Must match the whole request target as sent, e.g. `example.org:443` (the anchor searches unanchored, so
    /// `example\.org:443` also admitted `evilexample.org:443` and `example.org:4430`).
    public var allowedTargets: TargetPattern?
    /// Ports a target may use. Empty: every port.
    public var allowedPorts: Set<UInt16>
    /// Resolved target addresses inside these networks are refused with 403.
    public var deniedNetworks: PrefixSet
    public var connectTimeout: Duration
    public var relayPolicy: RelayPolicy

    public init(
        dnsCacheTTL: Duration = .seconds(60),
        allowedTargets: TargetPattern? = nil,
        allowedPorts: Set<UInt16> = [],
        deniedNetworks: PrefixSet = TargetConnectionConfiguration.defaultDeniedNetworks,
        connectTimeout: Duration = .seconds(10),
        relayPolicy: RelayPolicy = .standard
    ) {
        self.dnsCacheTTL = dnsCacheTTL
        self.allowedTargets = allowedTargets
        self.allowedPorts = allowedPorts
        self.deniedNetworks = deniedNetworks
        self.connectTimeout = connectTimeout
        self.relayPolicy = relayPolicy
    }

    /// Unspecified, loopback, RFC 1918, link-local, CGNAT, unique-local, multicast, reserved and broadcast ranges,
    /// and the IPv6 ranges that carry an IPv4 address a gateway or the host may turn into IPv4 traffic (NAT64,
    /// 6to4, IPv4-compatible): `64:ff9b::7f00:1` would otherwise reach 127.0.0.1 through a NAT64 gateway.
    /// (IPv4-mapped `::ffff:0:0/96` needs no entry: the set matches it as the IPv4 address it maps.)
    public static let defaultDeniedNetworkTexts: [String] = [
        "0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
        "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
        "::/96", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
        "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16",
    ]

    public static let defaultDeniedNetworks: PrefixSet = try! PrefixSet(parsing: defaultDeniedNetworkTexts)
}

/// The client-side rules.
public struct ClientConnectionConfiguration: Sendable {
    /// The request head must arrive within this time (else 408).
    public var initiationTimeout: Duration
    public var relayPolicy: RelayPolicy
    /// When set, every request needs valid `Proxy-Authorization: Basic` credentials (else 407).
    public var proxyAuthorization: ProxyAuthorization?

    public init(
        initiationTimeout: Duration = .seconds(10),
        relayPolicy: RelayPolicy = .standard,
        proxyAuthorization: ProxyAuthorization? = nil
    ) {
        self.initiationTimeout = initiationTimeout
        self.relayPolicy = relayPolicy
        self.proxyAuthorization = proxyAuthorization
    }
}

/// Everything the tunnel server reads from its YAML file.
public struct TunnelConfiguration: Sendable {
    public var clientConnection: ClientConnectionConfiguration
    public var targetConnection: TargetConnectionConfiguration
    /// Accepted connections beyond this many concurrent ones are answered with 503. `nil`: no cap.
    public var maxConnections: Int?
    /// Without a cap, a flood of connections runs the process out of file descriptors, and then no one gets in.
    public static let defaultMaxConnections = 10_000
    /// Forward absolute-form `GET http://…` (and other non-CONNECT) requests instead of answering 405.
    public var forwardPlainHTTP: Bool
    /// Put the client's address in the per-tunnel log line.
    public var logClientAddress: Bool

    public init(
        clientConnection: ClientConnectionConfiguration = .init(),
        targetConnection: TargetConnectionConfiguration = .init(),
        maxConnections: Int? = TunnelConfiguration.defaultMaxConnections,
        forwardPlainHTTP: Bool = false,
        logClientAddress: Bool = false
    ) {
        self.clientConnection = clientConnection
        self.targetConnection = targetConnection
        self.maxConnections = maxConnections
        self.forwardPlainHTTP = forwardPlainHTTP
        self.logClientAddress = logClientAddress
    }
}

/// A compiled `allowed_targets` regular expression together with its source text.
public struct TargetPattern: @unchecked Sendable {
    // Regex values are immutable once built; matching does not mutate shared state.
    private let regex: Regex<AnyRegexOutput>
    public let source: String

    public init(_ source: String) throws {
        self.regex = try Regex(source)
        self.source = source
    }

    /// The whole target must match. A search (the anchor's `Regex::is_match`) let `example\.com:443` admit
    /// `xexample.com:443` and `example.com:4430`, and few write `^…$` around an allowlist entry.
    public func matches(_ target: String) -> Bool {
        (try? regex.wholeMatch(in: target)) != nil
    }
}
