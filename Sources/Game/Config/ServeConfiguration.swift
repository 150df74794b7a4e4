public import CloudRanges
public import ConfigFile
public import Edge
import Foundation
public import IPAddress
import GameRules

/// Settings of `ipquest serve`. The YAML file and the command-line flags fill the same schema
/// and go through the same validation; flags win over the file.
///
/// ```yaml
/// host: 127.0.0.1
/// port: 8080
/// database: ./ipquest.sqlite
/// durability: full            # full | normal
/// trusted_proxies: [10.0.0.0/8, 192.0.2.1]   # peers whose word on the client is believed: CIDRs and
///                                       # published lists (cloudflare=https://www.cloudflare.com/ips-v4, NAME=PATH)
/// trusted_proxies_refresh_seconds: 3600 # how often published lists are fetched again
/// real_ip_header: x-forwarded-for       # the ONE source of the client address from trusted proxies:
///                                       # x-forwarded-for | forwarded | x-real-ip | cf-connecting-ip |
///                                       # fly-client-ip | true-client-ip | proxy_protocol (others are ignored)
/// proxy_protocol: false                 # PROXY v1/v2 from trusted proxies (same as real_ip_header: proxy_protocol)
/// rate_limit: { burst: 127, per_second: 1, max_networks: 1048576 }
/// claims: { queue_capacity: 65536, max_batch: 4096, gather_ms: 3 }   # gather_ms: how long a batch may wait for more under load
/// checkpoint:                           # the board written to a file, so a start replays only newer claims
///   interval_seconds: 300               # how often a changed board is written (also at shutdown); 0 = never
///   path: FILE                          # SQLite: default DATABASE.board; PostgreSQL: none unless set (one file per instance)
/// http:
///   idle_timeout_seconds: 30            # also the deadline for a request head (slowloris)
///   first_head_timeout_seconds: 10      # a new connection's first request head must arrive within this
///   max_header_bytes: 16384             # one field, and twice this for the whole head: else 431
///   max_header_fields: 100              # else 431
///   max_body_bytes: 65536               # else 413
///   http2: false                        # without tls: cleartext HTTP/2 only (h2c, prior knowledge), for behind a proxy
///   fast_path: true                     # answer snapshot reads, claims and /ip on the event loop, not the router
/// metrics: { address: 127.0.0.1:9100 }  # serve /metrics there only (default: on the main port)
/// log: { format: text }                 # text | json (one JSON object per line, same fields)
/// tracing:                              # a span per request, exported over OTLP/HTTP
///   endpoint: http://127.0.0.1:4318     # the collector (/v1/traces is added to a bare address; absent: no spans)
///   service_name: ipquest
///   sample_ratio: 1.0
/// tls:                                  # serve HTTPS directly: HTTP/2 and HTTP/1.1 by ALPN
///   certificate: /etc/ipquest/cert.pem  # PEM chain, leaf first
///   key: /etc/ipquest/key.pem
///   check_seconds: 60                   # both files are re-read when they change
/// limits:
///   max_in_flight: 1024                 # reads in progress; more get 503 at once
///   max_in_flight_claims: 1024          # claims have their own budget
///   max_connections: 10000              # beyond: closed at accept; keep-alive refused from 90 %
///   max_connections_per_network: 256    # per client /24 (/48) at accept, trusted proxies exempt (0 = no cap)
///   max_requests_per_connection: 10000
///   max_connection_lifetime_seconds: 3600
///   requests_burst: 600                 # token bucket per /24 (/48) for every route
///   requests_per_second: 100
///   strikes_before_ban: 50              # 429s a network may collect before a ban (0 = never ban)
///   ban_seconds: 300
/// upstream_allowlist:                   # only these peers may connect (absent = everyone):
///   - 203.0.113.0/24                    # CIDRs (reloaded on SIGHUP), and published lists as
///   - cloudflare=https://www.cloudflare.com/ips-v4   # NAME=URL or NAME=PATH (any ranges format)
/// upstream_allowlist_refresh_seconds: 3600
/// bans:                                 # reloaded on SIGHUP
///   user_agents: ["BadBot/1.0"]
///   user_agent_patterns: ["python-requests/.*"]
///   paths: ["/wp-admin*"]
/// location:                             # IPFire libloc database: country and AS of each claim
///   database: /var/lib/location/database.db   # the default when present; "" turns it off
///   check_seconds: 60                   # how often the file is checked for a new version
/// datacenter:                           # cloud providers' ranges: data-center claims and requests
///   sources: [aws=/data/ip-ranges.json, gcp=https://www.gstatic.com/ipranges/cloud.json]  # or "official"
///   cache_directory: /var/cache/ipquest # last good copy of URL sources
///   refresh_seconds: 21600
///   policy: tag                         # tag | deny | allow, for every route…
///   routes: {"/claim": deny}            # …unless a longer path prefix says otherwise
/// cache:                                # whole responses of the costly pages, shared by everyone
///   ttl_seconds: 1                      # 0 turns the cache off
///   max_bytes: 33554432
/// web:
///   root: /srv/ipquest/www              # a community's own front end, served before the built-in pages
/// ```
/// A host and port to listen on.
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

public struct ServeConfiguration: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var database = "./ipquest.sqlite"
    public var durability = SQLiteClaimStorage.Durability.full
    public var trustedProxies: [IPPrefix] = []
    /// Published lists of trusted proxies (a CDN's ranges), refreshed like the upstream allowlist's.
    public var trustedProxySources: [RangeSource] = []
    public var trustedProxiesRefreshSeconds = 3_600
    /// `real_ip_header`; nil picks the default (`realIPSource`).
    public var realIPHeader: RealIPSource?
    public var proxyProtocol = false
    /// Where the client address comes from behind a trusted proxy: the configured header,
    /// else the PROXY header when `proxy_protocol` is on, else `X-Forwarded-For`.
    public var realIPSource: RealIPSource { realIPHeader ?? (proxyProtocol ? .proxyProtocol : .xForwardedFor) }
    /// Whether any proxy is trusted (CIDRs or published lists).
    public var hasTrustedProxies: Bool { !trustedProxies.isEmpty || !trustedProxySources.isEmpty }
    public var rateLimitBurst = 127
    public var rateLimitPerSecond = 1.0
    public var rateLimitMaxNetworks = 1 << 20
    public var queueCapacity = 65_536
    public var maxBatch = 4_096
    /// Under load, how long the claim writer lets a batch gather (`GameEngine.Configuration.gatherWindow`).
    public var gatherMilliseconds = 3
    /// How often the board is checkpointed; 0 turns checkpoints off.
    public var checkpointIntervalSeconds = 300
    /// Where the board is checkpointed: nil is `DATABASE.board` on SQLite and no checkpoint on
    /// PostgreSQL (each instance needs a file of its own, so it is named by the operator).
    public var checkpointPath: String?

    /// The checkpoint file in effect, or nil when the board is not checkpointed.
    public var effectiveCheckpointPath: String? {
        guard checkpointIntervalSeconds > 0 else { return nil }
        if let checkpointPath { return checkpointPath }
        return PostgresSettings.isPostgresURL(database) ? nil : database + ".board"
    }
    public var idleTimeoutSeconds = 30
    public var firstHeadTimeoutSeconds = 10
    public var maxHeaderBytes = 16 * 1024
    public var maxHeaderFields = 100
    public var maxBodyBytes = 64 * 1024
    public var http2 = false
    /// Snapshot reads, claims and /ip answered on the event loop (`FastRoutes`) instead of the router.
    public var fastPath = true
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var tlsCheckSeconds = 60
    /// Host and port of a separate listener for /metrics; nil serves it on the main port.
    public var metricsAddress: ListenAddress?
    public var tracingEndpoint: String?
    public var tracingServiceName = "ipquest"
    public var tracingSampleRatio = 1.0
    /// `log.format`: `text` (one line per record) or `json` (one JSON object per line).
    public var logFormat = "text"

    // Edge guards (see Edge): in-flight, connections, per-network limits, bans.
    public var maxInFlight = 1_024
    public var maxInFlightClaims = 1_024
    public var maxConnections = 10_000
    public var maxConnectionsPerNetwork = 256
    public var maxRequestsPerConnection = 10_000
    public var maxConnectionLifetimeSeconds = 3_600
    public var requestsBurst = 600
    public var requestsPerSecond = 100.0
    public var strikesBeforeBan = 50
    public var banSeconds = 300
    public var upstreamAllowlist: [IPPrefix]? = nil
    public var upstreamAllowlistSources: [RangeSource] = []
    public var upstreamAllowlistRefreshSeconds = 3_600
    public var bannedUserAgents: [String] = []
    public var bannedUserAgentPatterns: [String] = []
    public var bannedPaths: [String] = []

    /// Where Debian's `libloc-database` package puts IPFire's database.
    public static let debianLocationDatabase = "/var/lib/location/database.db"
    public var locationDatabase: String? = FileManager.default.fileExists(atPath: debianLocationDatabase) ? debianLocationDatabase : nil
    public var locationCheckSeconds = 60
    public var dataCenterSources: [RangeSource] = []
    public var dataCenterCacheDirectory: String?
    public var dataCenterRefreshSeconds = 21_600
    public var dataCenterPolicy = DataCenterPolicy()
    public var cacheTTLSeconds = 1
    public var cacheMaxBytes = 32 << 20
    /// `web.root`: a directory of static files served in front of the built-in pages (nil: none).
    public var webRoot: String?

    public init() {}

    /// Every key the file may contain, for "unknown key" errors.
    static let schema: [String: Set<String>?] = [
        "host": nil, "port": nil, "database": nil, "durability": nil, "trusted_proxies": nil, "proxy_protocol": nil,
        "trusted_proxies_refresh_seconds": nil, "real_ip_header": nil,
        "rate_limit": ["burst", "per_second", "max_networks"],
        "claims": ["queue_capacity", "max_batch", "gather_ms"],
        "checkpoint": ["interval_seconds", "path"],
        "http": ["idle_timeout_seconds", "first_head_timeout_seconds", "max_header_bytes", "max_header_fields", "max_body_bytes", "http2", "fast_path"],
        "tls": ["certificate", "key", "check_seconds"],
        "metrics": ["address"],
        "log": ["format"],
        "tracing": ["endpoint", "service_name", "sample_ratio"],
        "limits": [
            "max_in_flight", "max_in_flight_claims", "max_connections", "max_connections_per_network", "max_requests_per_connection",
            "max_connection_lifetime_seconds", "requests_burst", "requests_per_second", "strikes_before_ban", "ban_seconds",
        ],
        "upstream_allowlist": nil, "upstream_allowlist_refresh_seconds": nil,
        "bans": ["user_agents", "user_agent_patterns", "paths"],
        "location": ["database", "check_seconds"],
        "datacenter": ["sources", "cache_directory", "refresh_seconds", "policy", "routes"],
        "cache": ["ttl_seconds", "max_bytes"],
        "web": ["root"],
    ]

    /// Reads YAML text into this configuration, key by key: `ConfigDocument` reads the file (and
    /// refuses what a configuration never needs), `ConfigNode` reads each value as its key expects.
    public mutating func apply(yaml text: String) throws(ConfigFileError) {
        let top = try ConfigMapping(yaml: text)
        try top.checkKeys(Set(Self.schema.keys))
        for (entry, node) in zip(top.entries, top.nodes) {
            if let allowed = Self.schema[entry.key] ?? nil {
                let nested = try node.mapping()
                try nested.checkKeys(allowed)
                for item in nested.nodes { try set(item) }
            } else {
                try set(node)
            }
        }
    }

    /// Sets one key from a flag's value: text, a number, or a list of them.
    public mutating func set(_ key: String, _ value: Any) throws(ConfigFileError) {
        try set(ConfigNode(Self.flagValue(value), path: key))
    }

    private static func flagValue(_ value: Any) -> ConfigValue {
        switch value {
        case let value as ConfigValue: value
        case let list as [Any]: .sequence(list.map(flagValue))
        default: .scalar("\(value)")
        }
    }

    /// Sets one key (`node.path`) from a YAML value or a flag's text.
    mutating func set(_ node: ConfigNode) throws(ConfigFileError) {
        let key = node.path
        switch key {
        case "host":
            let text = try node.string()
            guard IPAddress(text) != nil || text == "localhost" else {
                throw node.error("'\(text)' is not an IP address")
            }
            host = text
        case "port": port = try node.int(in: 0...65_535)
        case "database":
            let text = try node.string()
            guard !text.isEmpty else { throw node.error("must not be empty") }
            if PostgresSettings.isPostgresURL(text) { do { _ = try PostgresSettings(url: text) } catch { throw node.error(error.description) } }
            database = text
        case "durability":
            let text = try node.string()
            guard let d = SQLiteClaimStorage.Durability(rawValue: text) else {
                throw node.error("'\(text)' is not one of full, normal")
            }
            durability = d
        case "trusted_proxies":
            (trustedProxies, trustedProxySources) = try Self.prefixesAndSources(node)
        case "trusted_proxies_refresh_seconds": trustedProxiesRefreshSeconds = try node.int(in: 60...604_800)
        case "real_ip_header":
            let text = try node.string().lowercased()
            guard let source = RealIPSource(rawValue: text == "proxy-protocol" ? "proxy_protocol" : text) else {
                throw node.error("'\(text)' is not one of \(RealIPSource.names)")
            }
            realIPHeader = source
            if source == .proxyProtocol { proxyProtocol = true }
        case "proxy_protocol": proxyProtocol = try node.bool()
        case "rate_limit.burst": rateLimitBurst = try node.int(in: 1...1_000_000)
        case "rate_limit.per_second":
            let d = try node.double()
            guard d > 0, d <= 1_000_000 else { throw node.error("must be > 0 and ≤ 1000000") }
            rateLimitPerSecond = d
        case "rate_limit.max_networks": rateLimitMaxNetworks = try node.int(in: 16...100_000_000)
        case "claims.queue_capacity": queueCapacity = try node.int(in: 1...10_000_000)
        case "claims.max_batch": maxBatch = try node.int(in: 1...100_000)
        case "claims.gather_ms": gatherMilliseconds = try node.int(in: 0...50)
        case "checkpoint.interval_seconds": checkpointIntervalSeconds = try node.int(in: 0...86_400)
        case "checkpoint.path":
            let text = try node.string()
            guard !text.isEmpty else { throw node.error("must not be empty") }
            checkpointPath = text
        case "http.idle_timeout_seconds": idleTimeoutSeconds = try node.int(in: 1...86_400)
        case "http.first_head_timeout_seconds": firstHeadTimeoutSeconds = try node.int(in: 1...86_400)
        case "http.max_header_bytes": maxHeaderBytes = try node.int(in: 1_024...1 << 20)
        case "http.max_header_fields": maxHeaderFields = try node.int(in: 8...10_000)
        case "http.max_body_bytes": maxBodyBytes = try node.int(in: 0...1 << 30)
        case "http.http2": http2 = try node.bool()
        case "http.fast_path": fastPath = try node.bool()
        case "tls.certificate", "tls.key":
            let text = try node.string()
            guard FileManager.default.isReadableFile(atPath: text) else { throw node.error("cannot read '\(text)'") }
            if key == "tls.certificate" { tlsCertificate = text } else { tlsKey = text }
        case "metrics.address":
            let text = try node.string()
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
                throw node.error("'\(text)' is not HOST:PORT")
            }
            let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            guard IPAddress(host) != nil || host == "localhost" else { throw node.error("'\(host)' is not an IP address") }
            metricsAddress = ListenAddress(host: host, port: port)
        case "log.format":
            let text = try node.string()
            guard text == "text" || text == "json" else { throw node.error("'\(text)' is not one of text, json") }
            logFormat = text
        case "tracing.endpoint":
            let text = try node.string()
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw node.error("'\(text)' is not an http(s) URL")
            }
            tracingEndpoint = text
        case "tracing.service_name":
            tracingServiceName = try node.string()
            guard !tracingServiceName.isEmpty else { throw node.error("must not be empty") }
        case "tracing.sample_ratio":
            tracingSampleRatio = try node.double()
            guard (0...1).contains(tracingSampleRatio) else { throw node.error("must be between 0 and 1") }
        case "tls.check_seconds": tlsCheckSeconds = try node.int(in: 1...86_400)
        case "limits.max_in_flight": maxInFlight = try node.int(in: 0...1_000_000)
        case "limits.max_in_flight_claims": maxInFlightClaims = try node.int(in: 0...1_000_000)
        case "limits.max_connections": maxConnections = try node.int(in: 0...10_000_000)
        case "limits.max_connections_per_network": maxConnectionsPerNetwork = try node.int(in: 0...10_000_000)
        case "limits.max_requests_per_connection": maxRequestsPerConnection = try node.int(in: 1...100_000_000)
        case "limits.max_connection_lifetime_seconds": maxConnectionLifetimeSeconds = try node.int(in: 1...604_800)
        case "limits.requests_burst": requestsBurst = try node.int(in: 1...100_000_000)
        case "limits.requests_per_second":
            let d = try node.double()
            guard d > 0 else { throw node.error("must be > 0") }
            requestsPerSecond = d
        case "limits.strikes_before_ban": strikesBeforeBan = try node.int(in: 0...1_000_000)
        case "limits.ban_seconds": banSeconds = try node.int(in: 1...604_800)
        case "upstream_allowlist":
            let (cidrs, sources) = try Self.prefixesAndSources(node)
            upstreamAllowlist = cidrs
            upstreamAllowlistSources = sources
        case "upstream_allowlist_refresh_seconds": upstreamAllowlistRefreshSeconds = try node.int(in: 1...604_800)
        case "bans.user_agents": bannedUserAgents = try node.strings()
        case "bans.user_agent_patterns":
            bannedUserAgentPatterns = try node.strings()
            for (i, p) in bannedUserAgentPatterns.enumerated() where !RequestRules.isValidPattern(p) {
                throw ConfigFileError(key: ConfigKeyPath.item(key, i), problem: "'\(p)' is not a valid regular expression")
            }
        case "bans.paths": bannedPaths = try node.strings()
        case "location.database":
            let text = try node.string()
            if text.isEmpty { locationDatabase = nil; break }
            guard FileManager.default.isReadableFile(atPath: text) else { throw node.error("cannot read '\(text)'") }
            locationDatabase = text
        case "cache.ttl_seconds": cacheTTLSeconds = try node.int(in: 0...3_600)
        case "cache.max_bytes": cacheMaxBytes = try node.int(in: 0...(1 << 34))
        case "web.root":
            let text = try node.string()
            webRoot = text.isEmpty ? nil : text
        case "location.check_seconds": locationCheckSeconds = try node.int(in: 1...86_400)
        case "datacenter.sources":
            var sources: [RangeSource] = []
            for (i, spec) in try node.strings().enumerated() {
                if spec == "official" { sources += RangeSource.official; continue }
                do { sources.append(try RangeSource(parsing: spec)) } catch {
                    throw ConfigFileError(key: ConfigKeyPath.item(key, i), problem: error.description)
                }
            }
            dataCenterSources = sources
        case "datacenter.cache_directory":
            let text = try node.string()
            dataCenterCacheDirectory = text.isEmpty ? nil : text
        case "datacenter.refresh_seconds": dataCenterRefreshSeconds = try node.int(in: 60...604_800)
        case "datacenter.policy": dataCenterPolicy.defaultAction = try Self.action(node)
        case "datacenter.routes":
            guard case .mapping(let entries) = node.value else { throw node.error("expected a mapping of path prefix to tag, deny or allow") }
            var routes: [String: DataCenterAction] = [:]
            for (entry, route) in zip(entries, ConfigMapping(entries, path: key).nodes) {
                guard entry.key.hasPrefix("/") else { throw route.error("a path prefix starts with /") }
                routes[entry.key] = try Self.action(route)
            }
            dataCenterPolicy.routes = routes
        default: throw node.error("unknown key")
        }
    }

    static func action(_ node: ConfigNode) throws(ConfigFileError) -> DataCenterAction {
        let text = try node.string()
        guard let action = DataCenterAction(rawValue: text) else {
            throw node.error("'\(text)' is not one of tag, deny, allow")
        }
        return action
    }

    /// CIDRs and NAME=PATH|URL range sources, in one list or one comma-separated string; a
    /// problem names the item (`trusted_proxies[1]`).
    static func prefixesAndSources(_ node: ConfigNode) throws(ConfigFileError) -> ([IPPrefix], [RangeSource]) {
        let items: [(path: String, text: String)]
        if let text = node.text {
            items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                .enumerated().map { (ConfigKeyPath.item(node.path, $0), $1) }
        } else if case .sequence = node.value {
            var list: [(path: String, text: String)] = []
            for item in try node.items() { list.append((item.path, try item.string())) }
            items = list
        } else {
            throw node.error("expected a list of strings")
        }
        var cidrs: [IPPrefix] = []
        var sources: [RangeSource] = []
        for (path, item) in items {
            do {
                if item.contains("=") { sources.append(try RangeSource(parsing: item)) } else { cidrs.append(try IPPrefix(parsing: item)) }
            } catch {
                throw ConfigFileError(key: path, problem: "\(error)")
            }
        }
        return (cidrs, sources)
    }

    /// Cross-field checks.
    public func validate() throws(ConfigFileError) {
        if proxyProtocol, !hasTrustedProxies {
            throw ConfigFileError(key: "proxy_protocol", problem: "needs trusted_proxies: PROXY headers are accepted only from them")
        }
        if let header = realIPHeader {
            if header == .proxyProtocol, !proxyProtocol {
                throw ConfigFileError(key: "real_ip_header", problem: "proxy_protocol needs proxy_protocol: true (or --proxy-protocol)")
            }
            if header != .proxyProtocol, proxyProtocol {
                throw ConfigFileError(key: "real_ip_header", problem: "with proxy_protocol on, the client address comes from the PROXY header; \(header.rawValue) would not be read")
            }
            if !hasTrustedProxies {
                throw ConfigFileError(key: "real_ip_header", problem: "needs trusted_proxies: the header is read only from them")
            }
        }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw ConfigFileError(key: tlsCertificate == nil ? "tls.certificate" : "tls.key", problem: "tls needs both certificate and key")
        }
        if proxyProtocol, tlsCertificate != nil || http2 {
            throw ConfigFileError(key: "proxy_protocol", problem: "is for HTTP/1.1 behind a proxy; it cannot be combined with tls or http.http2")
        }
        if let webRoot {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: webRoot, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ConfigFileError(key: "web.root", problem: "\(webRoot) is not a directory")
            }
        }
        if maxBatch > queueCapacity {
            throw ConfigFileError(key: "claims.max_batch", problem: "must not exceed claims.queue_capacity (\(queueCapacity))")
        }
    }
}
