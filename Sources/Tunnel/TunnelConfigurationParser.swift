public import ConfigFile
import IPAddress

extension TunnelConfiguration {
    /// Parses the anchor-compatible YAML document. Every key is optional (defaults as in `init()`);
    /// unknown keys and malformed values are errors naming the key path.
    /// Durations and byte counts are read as `ConfigSyntax` says (`10s`, `1m 30s`; `10mb`, `64kib`).
    public init(yaml text: String) throws(ConfigFileError) {
        let top = try ConfigMapping(yaml: text)
        self.init()
        try top.checkKeys([
            "client_connection", "target_connection", "max_connections", "forward_plain_http", "log_client_address",
        ])
        if Self.isOff(top, "max_connections") {
            maxConnections = nil
        } else if let value = try top.int("max_connections", atLeast: 1) {
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
                for entry in usersNode.entries {
                    guard !entry.key.contains(":") else { throw usersNode.error(entry.key, "a user name cannot contain ':'") }
                    users[entry.key] = try usersNode.string(entry.key) ?? ""
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
            if let list = try Self.list(target, "denied_networks") {
                var set = PrefixSet()
                for entry in list {
                    guard let prefix = IPPrefix(entry) else {
                        throw target.error("denied_networks", "'\(entry)' is not an address or CIDR prefix")
                    }
                    set.insert(prefix)
                }
                targetConnection.deniedNetworks = set
            }
            if let list = try Self.list(target, "allowed_ports") {
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

    /// `none` or `off`: a limit switched off.
    fileprivate static func isOff(_ mapping: ConfigMapping, _ key: String) -> Bool {
        guard let text = mapping.node(key)?.text else { return false }
        return ["none", "off"].contains(text.lowercased())
    }

    /// A list of strings (or one string); present but empty (`key:`, `key: []`, `key: "[]"`) is the empty list.
    private static func list(_ mapping: ConfigMapping, _ key: String) throws(ConfigFileError) -> [String]? {
        guard let entry = mapping.entries.first(where: { $0.key == key }) else { return nil }
        if entry.value == .null || entry.value == .scalar("") || entry.value == .scalar("[]") { return [] }
        return try ConfigNode(entry.value, path: ConfigKeyPath.join(mapping.path, key)).strings()
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
    fileprivate init(_ node: ConfigMapping) throws(ConfigFileError) {
        self.init()
        try node.checkKeys([
            "idle_timeout", "min_rate_bpm", "max_rate_bps", "max_lifetime", "max_total_payload", "min_rate_grace",
        ])
        if TunnelConfiguration.isOff(node, "idle_timeout") {
            idleTimeout = nil
        } else if let value = try node.duration("idle_timeout") {
            idleTimeout = value
        }
        if let value = try node.int("min_rate_bpm", atLeast: 0) { minRateBytesPerMinute = UInt64(value) }
        if let value = try node.int("max_rate_bps", atLeast: 1) {
            // The anchor uses 10^12 and above as "no limit".
            maxRateBytesPerSecond = value >= 1_000_000_000_000 ? nil : UInt64(value)
        }
        if let value = try node.duration("max_lifetime") { maxLifetime = value }
        if let value = try node.byteCount("max_total_payload") { maxTotalPayload = value }
        if let value = try node.duration("min_rate_grace") { minRateGracePeriod = value }
    }
}
