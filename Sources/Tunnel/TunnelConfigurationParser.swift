import IPAddress
import Yams

/// A configuration problem. `key` is the dotted path of the offending key, e.g.
/// `target_connection.relay_policy.idle_timeout`.
public struct TunnelConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    public let key: String
    public let problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String {
        key.isEmpty ? "configuration: \(problem)" : "configuration key '\(key)': \(problem)"
    }
}

extension TunnelConfiguration {
    /// Parses the anchor-compatible YAML document. Every key is optional (defaults as in `init()`);
    /// unknown keys and malformed values are errors naming the key.
    public init(yaml text: String) throws(TunnelConfigurationError) {
        let root: Node?
        do {
            // No resolver rules: every value is read from its text below, and Yams' default
            // rules are regular expressions whose first use pages in ICU for good.
            root = try Yams.compose(yaml: text, .basic)
        } catch {
            throw TunnelConfigurationError(key: "", problem: "not valid YAML: \(error)")
        }
        self.init()
        guard let root else { return }  // empty document: defaults
        let top = try YAMLMapping(root, path: "")
        try top.checkKeys([
            "client_connection", "target_connection", "max_connections", "forward_plain_http", "log_client_address",
        ])
        if try top.isOff("max_connections") {
            maxConnections = nil
        } else if let value = try top.integer("max_connections") {
            guard value > 0 else { throw top.error("max_connections", "must be a positive integer") }
            maxConnections = value
        }
        if let value = try top.bool("forward_plain_http") { forwardPlainHTTP = value }
        if let value = try top.bool("log_client_address") { logClientAddress = value }

        // Whether each relay policy names its idle_timeout: see `settleIdleTimeouts`.
        var idleTimeoutGiven = (client: false, target: false)
        if let client = try top.mapping("client_connection") {
            try client.checkKeys(["initiation_timeout", "relay_policy", "proxy_authorization"])
            if let value = try client.duration("initiation_timeout") { clientConnection.initiationTimeout = value }
            if let policy = try client.mapping("relay_policy") {
                clientConnection.relayPolicy = try RelayPolicy(policy)
                idleTimeoutGiven.client = policy.has("idle_timeout")
            }
            if let auth = try client.mapping("proxy_authorization") {
                try auth.checkKeys(["realm", "users"])
                let realm = try auth.string("realm") ?? "ipquest"
                guard let usersNode = try auth.mapping("users") else {
                    throw auth.error("users", "is required: a mapping of user name to password")
                }
                var users: [String: String] = [:]
                for (name, _) in usersNode.entries {
                    guard !name.contains(":") else { throw usersNode.error(name, "a user name cannot contain ':'") }
                    users[name] = try usersNode.string(name) ?? ""
                }
                guard !users.isEmpty else { throw auth.error("users", "must name at least one user") }
                clientConnection.proxyAuthorization = ProxyAuthorization(realm: realm, users: users)
            }
        }

        if let target = try top.mapping("target_connection") {
            try target.checkKeys([
                "dns_cache_ttl", "allowed_targets", "connect_timeout", "relay_policy", "denied_networks",
                "allowed_ports",
            ])
            if let value = try target.duration("dns_cache_ttl") { targetConnection.dnsCacheTTL = value }
            if let value = try target.duration("connect_timeout") { targetConnection.connectTimeout = value }
            if let pattern = try target.string("allowed_targets") {
                do {
                    targetConnection.allowedTargets = try TargetPattern(pattern)
                } catch {
                    throw target.error("allowed_targets", "not a valid regular expression: \(error)")
                }
            }
            if let policy = try target.mapping("relay_policy") {
                targetConnection.relayPolicy = try RelayPolicy(policy)
                idleTimeoutGiven.target = policy.has("idle_timeout")
            }
            if let list = try target.stringList("denied_networks") {
                var set = PrefixSet()
                for entry in list {
                    guard let prefix = IPPrefix(entry) else {
                        throw target.error("denied_networks", "'\(entry)' is not an address or CIDR prefix")
                    }
                    set.insert(prefix)
                }
                targetConnection.deniedNetworks = set
            }
            if let list = try target.stringList("allowed_ports") {
                var ports: Set<UInt16> = []
                for entry in list {
                    guard let port = UInt16(entry), port > 0 else {
                        throw target.error("allowed_ports", "'\(entry)' is not a port number (1-65535)")
                    }
                    ports.insert(port)
                }
                targetConnection.allowedPorts = ports
            }
        }
        settleIdleTimeouts(given: idleTimeoutGiven)
    }

    /// The tunnel's idle limit is the smaller of the two policies' values, and each defaults to
    /// `RelayPolicy.defaultIdleTimeout`. A file that sets `idle_timeout: 5m` in one policy only means five
    /// minutes, not the other policy's default: the policy that is silent follows the one that spoke.
    private mutating func settleIdleTimeouts(given: (client: Bool, target: Bool)) {
        switch given {
        case (true, false): targetConnection.relayPolicy.idleTimeout = clientConnection.relayPolicy.idleTimeout
        case (false, true): clientConnection.relayPolicy.idleTimeout = targetConnection.relayPolicy.idleTimeout
        default: break
        }
    }
}

extension RelayPolicy {
    fileprivate init(_ node: YAMLMapping) throws(TunnelConfigurationError) {
        self.init()
        try node.checkKeys([
            "idle_timeout", "min_rate_bpm", "max_rate_bps", "max_lifetime", "max_total_payload", "min_rate_grace",
        ])
        if try node.isOff("idle_timeout") {
            idleTimeout = nil
        } else if let value = try node.duration("idle_timeout") {
            idleTimeout = value
        }
        if let value = try node.unsigned("min_rate_bpm") { minRateBytesPerMinute = value }
        if let value = try node.unsigned("max_rate_bps") {
            // The anchor uses 10^12 and above as "no limit".
            guard value > 0 else { throw node.error("max_rate_bps", "must be positive") }
            maxRateBytesPerSecond = value >= 1_000_000_000_000 ? nil : value
        }
        if let value = try node.duration("max_lifetime") { maxLifetime = value }
        if let value = try node.byteCount("max_total_payload") { maxTotalPayload = value }
        if let value = try node.duration("min_rate_grace") { minRateGracePeriod = value }
    }
}

/// A YAML mapping with its dotted path, giving typed, key-naming accessors.
private struct YAMLMapping {
    let path: String
    let entries: [(key: String, value: Node)]

    init(_ node: Node, path: String) throws(TunnelConfigurationError) {
        guard case .mapping(let mapping) = node else {
            throw TunnelConfigurationError(key: path, problem: "must be a mapping of keys to values")
        }
        var entries: [(String, Node)] = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw TunnelConfigurationError(key: path, problem: "keys must be plain strings")
            }
            if entries.contains(where: { $0.0 == scalar.string }) {
                throw TunnelConfigurationError(key: Self.join(path, scalar.string), problem: "appears twice")
            }
            entries.append((scalar.string, value))
        }
        self.path = path
        self.entries = entries
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ problem: String) -> TunnelConfigurationError {
        TunnelConfigurationError(key: Self.join(path, key), problem: problem)
    }

    func checkKeys(_ known: Set<String>) throws(TunnelConfigurationError) {
        for (key, _) in entries where !known.contains(key) {
            throw error(key, "unknown key (known here: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// Whether the key is present with a value (null counts as absent).
    func has(_ key: String) -> Bool { node(key) != nil }

    /// `none` or `off`: a limit switched off.
    func isOff(_ key: String) throws(TunnelConfigurationError) -> Bool {
        guard let text = try scalar(key) else { return false }
        return ["none", "off"].contains(text.lowercased())
    }

    private func node(_ key: String) -> Node? {
        guard let node = entries.first(where: { $0.key == key })?.value else { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
            return nil
        }
        return node
    }

    private func scalar(_ key: String) throws(TunnelConfigurationError) -> String? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node else { throw error(key, "must be a single value") }
        return scalar.string
    }

    func mapping(_ key: String) throws(TunnelConfigurationError) -> YAMLMapping? {
        guard let node = node(key) else { return nil }
        return try YAMLMapping(node, path: Self.join(path, key))
    }

    func string(_ key: String) throws(TunnelConfigurationError) -> String? { try scalar(key) }

    func integer(_ key: String) throws(TunnelConfigurationError) -> Int? {
        guard let text = try scalar(key) else { return nil }
        guard let value = Int(text.filter { $0 != "_" }) else {
            throw error(key, "'\(text)' is not an integer")
        }
        return value
    }

    func unsigned(_ key: String) throws(TunnelConfigurationError) -> UInt64? {
        guard let text = try scalar(key) else { return nil }
        guard let value = UInt64(text.filter { $0 != "_" }) else {
            throw error(key, "'\(text)' is not a non-negative integer")
        }
        return value
    }

    func bool(_ key: String) throws(TunnelConfigurationError) -> Bool? {
        guard let text = try scalar(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "'\(text)' is not true or false")
        }
    }

    func duration(_ key: String) throws(TunnelConfigurationError) -> Duration? {
        guard let text = try scalar(key) else { return nil }
        do {
            return try parseHumanDuration(text)
        } catch {
            throw self.error(key, error.problem)
        }
    }

    func byteCount(_ key: String) throws(TunnelConfigurationError) -> UInt64? {
        guard let text = try scalar(key) else { return nil }
        do {
            return try parseByteCount(text)
        } catch {
            throw self.error(key, error.problem)
        }
    }

    func stringList(_ key: String) throws(TunnelConfigurationError) -> [String]? {
        guard let node = entries.first(where: { $0.key == key })?.value else { return nil }
        switch node {
        case .sequence(let sequence):
            var out: [String] = []
            for item in sequence {
                guard case .scalar(let scalar) = item else { throw error(key, "must be a list of single values") }
                out.append(scalar.string)
            }
            return out
        case .scalar(let scalar) where scalar.string.isEmpty || scalar.string == "[]":
            return []
        default:
            throw error(key, "must be a list")
        }
    }
}

/// A value problem without a key; the caller adds the key.
public struct ValueParseError: Error, Equatable, Sendable {
    public let problem: String
}

/// The longest duration a configuration may give. Timers count nanoseconds in an Int64 (292 years), and a
/// figure beyond a century is a typo rather than a wish.
public let maximumConfiguredDuration: Duration = .seconds(100 * 365 * 86400)

/// Parses a humantime-style duration as the anchor's config uses: `10s`, `500ms`, `1m 30s`, `2h`, `1day`.
/// A unit is required, as in the anchor ("10" alone is rejected); more than `maximumConfiguredDuration` is an error.
public func parseHumanDuration(_ text: String) throws(ValueParseError) -> Duration {
    let units: [String: Duration] = [
        "ns": .nanoseconds(1), "nsec": .nanoseconds(1),
        "us": .microseconds(1), "usec": .microseconds(1),
        "ms": .milliseconds(1), "msec": .milliseconds(1), "millis": .milliseconds(1),
        "s": .seconds(1), "sec": .seconds(1), "secs": .seconds(1), "second": .seconds(1), "seconds": .seconds(1),
        "m": .seconds(60), "min": .seconds(60), "mins": .seconds(60), "minute": .seconds(60), "minutes": .seconds(60),
        "h": .seconds(3600), "hr": .seconds(3600), "hrs": .seconds(3600), "hour": .seconds(3600), "hours": .seconds(3600),
        "d": .seconds(86400), "day": .seconds(86400), "days": .seconds(86400),
        "w": .seconds(604_800), "week": .seconds(604_800), "weeks": .seconds(604_800),
    ]
    var total = Duration.zero
    var index = text.startIndex
    var parts = 0
    func skipSpaces() { while index < text.endIndex, text[index] == " " { index = text.index(after: index) } }
    skipSpaces()
    while index < text.endIndex {
        let numberStart = index
        while index < text.endIndex, text[index].isASCII, text[index].isNumber { index = text.index(after: index) }
        guard numberStart < index, let number = Int64(text[numberStart..<index]) else {
            throw ValueParseError(problem: "'\(text)' is not a duration (expected e.g. 10s, 500ms, 1m 30s)")
        }
        let unitStart = index
        while index < text.endIndex, text[index].isASCII, text[index].isLetter { index = text.index(after: index) }
        let unit = String(text[unitStart..<index])
        guard let scale = units[unit] else {
            throw ValueParseError(
                problem: unit.isEmpty
                    ? "'\(text)' has no time unit (expected e.g. 10s, 500ms, 1m 30s)"
                    : "'\(text)' has an unknown time unit '\(unit)'"
            )
        }
        // Checked before multiplying: `.seconds(604_800) * Int64.max` overflows Duration and traps.
        let tooLong = ValueParseError(problem: "'\(text)' is longer than the maximum of 100 years")
        guard Double(number) <= maximumConfiguredDuration / scale else { throw tooLong }
        total += scale * number
        guard total <= maximumConfiguredDuration else { throw tooLong }
        parts += 1
        skipSpaces()
    }
    guard parts > 0 else { throw ValueParseError(problem: "empty duration") }
    return total
}

/// Parses a byte count: a plain integer, or a number with a unit: `b`, `kb`/`mb`/`gb` (powers of 1000)
/// or `kib`/`mib`/`gib` (powers of 1024), case-insensitive, e.g. `10mb`, `64 KiB`.
public func parseByteCount(_ text: String) throws(ValueParseError) -> UInt64 {
    let lowered = text.lowercased().filter { $0 != " " && $0 != "_" }
    let digits = lowered.prefix { $0.isASCII && $0.isNumber }
    let unit = lowered.dropFirst(digits.count)
    let multipliers: [Substring: UInt64] = [
        "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1_000_000, "mb": 1_000_000, "g": 1_000_000_000, "gb": 1_000_000_000,
        "kib": 1024, "mib": 1 << 20, "gib": 1 << 30, "tb": 1_000_000_000_000, "tib": 1 << 40,
    ]
    guard let number = UInt64(digits), let multiplier = multipliers[unit] else {
        throw ValueParseError(problem: "'\(text)' is not a byte count (expected e.g. 1048576, 10mb, 64kib)")
    }
    let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
    guard !overflow else { throw ValueParseError(problem: "'\(text)' is too large") }
    return product
}
