import IPAddress
import NIOCore
import ConfigFile
import Testing

@testable import Tunnel

/// Safer defaults and the traps of the 2026-12 security review (items 5, 10, 11): the default limits,
/// the deny list's IPv4-in-IPv6 and reserved ranges, `allowed_targets` matched whole, and durations
/// too long for a timer.
@Suite("Tunnel hardening", .timeLimit(.minutes(1)))
struct TunnelHardeningTests {
    // MARK: defaults

    @Test func aFreshConfigurationCapsConnectionsAndEndsIdleTunnels() throws {
        for configuration in [TunnelConfiguration(), try TunnelConfiguration(yaml: "")] {
            #expect(configuration.maxConnections == 10_000)
            #expect(configuration.clientConnection.relayPolicy.idleTimeout == .seconds(60))
            #expect(configuration.targetConnection.relayPolicy.idleTimeout == .seconds(60))
        }
        // A relay policy that does not mention idle_timeout keeps the default…
        let partial = try TunnelConfiguration(yaml: "client_connection:\n  relay_policy:\n    max_rate_bps: 1000\n")
        #expect(partial.clientConnection.relayPolicy.idleTimeout == .seconds(60))
        // …and both limits can still be switched off.
        let off = try TunnelConfiguration(
            yaml: """
                max_connections: none
                client_connection:
                  relay_policy:
                    idle_timeout: none
                target_connection:
                  relay_policy:
                    idle_timeout: off
                """)
        #expect(off.maxConnections == nil)
        #expect(RelayPolicy.tunnelLimits(client: off.clientConnection.relayPolicy, target: off.targetConnection.relayPolicy).idle == nil)
    }

    @Test func anIdleTimeoutSetInOnePolicyIsTheTunnelsLimitNotTheOtherPolicysDefault() throws {
        let longer = try TunnelConfiguration(yaml: "target_connection:\n  relay_policy:\n    idle_timeout: 5m\n")
        let limits = RelayPolicy.tunnelLimits(
            client: longer.clientConnection.relayPolicy, target: longer.targetConnection.relayPolicy)
        #expect(limits.idle == .seconds(300))
    }

    // MARK: the deny list

    static let smuggledLoopback = [
        "64:ff9b::7f00:1",  // NAT64 (RFC 6052) of 127.0.0.1
        "64:ff9b:1::7f00:1",  // local-use NAT64 (RFC 8215)
        "2002:7f00:1::1",  // 6to4 of 127.0.0.1
        "::7f00:1",  // IPv4-compatible 127.0.0.1
        "::a00:1",  // IPv4-compatible 10.0.0.1
        "240.0.0.1",  // reserved (class E)
        "255.255.255.254",  // reserved, next to broadcast
    ]

    @Test func defaultDenyListCoversNAT64SixToFourIPv4CompatibleAndReserved() {
        let denied = TargetConnectionConfiguration.defaultDeniedNetworks
        for text in Self.smuggledLoopback + ["::ffff:127.0.0.1", "::ffff:10.1.2.3"] {
            #expect(denied.contains(IPAddress(text)!), "\(text) should be denied")
        }
        for text in ["2606:4700::1111", "2001:4860:4860::8888", "64:ff9c::1", "2003::1", "8.8.4.4", "223.255.255.254"] {
            #expect(!denied.contains(IPAddress(text)!), "\(text) should be allowed")
        }
    }

    // No end-to-end CONNECT to these addresses: should the list ever regress, such a test would
    // send traffic off this machine (this sandbox routes IPv6 and even 240.0.0.0/4 outward).
    // Both engines refuse literal targets through the one `TunnelServer.check`, whose use of
    // `deniedNetworks` the loopback deny-list tests in TunnelPolicyTests exercise.

    // MARK: allowed_targets

    @Test func allowedTargetsMustMatchTheWholeTarget() throws {
        let pattern = try TargetPattern(#"example\.com:443"#)
        #expect(pattern.matches("example.com:443"))
        #expect(!pattern.matches("xexample.com:443"))
        #expect(!pattern.matches("example.com:4430"))
        // An alternation is matched whole too, not just its first branch at the start.
        let either = try TargetPattern(#"a\.org:443|b\.org:443"#)
        #expect(either.matches("b.org:443"))
        #expect(!either.matches("b.org:4430"))
        // Patterns written for the anchor with ^…$ keep working.
        #expect(try TargetPattern(#"^example\.com:443$"#).matches("example.com:443"))
    }

    @Test(arguments: TunnelEngine.tested)
    func allowedTargetsRefusesALongerNameOrPortWith403(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let echoPort = echo.port
        // The allowed port is the echo port's first four digits: the echo port itself is then the "4430" of
        // "443", and would reach the echo server if the pattern were searched.
        let shortPort = String(String(echoPort).prefix(4))
        let configuration = loopbackConfiguration {
            $0.targetConnection.allowedTargets = try! TargetPattern(#"echo\.test:"# + "(\(shortPort)|\(echoPort))")
        }
        let resolver = FixedResolver(table: ["echo.test": ["127.0.0.1"], "xecho.test": ["127.0.0.1"]])
        try await withTunnel(engine: engine, configuration, resolver: resolver) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let longerName = try BlockingClient(port: port)
                #expect(try longerName.connect(to: "xecho.test:\(echoPort)").status == 403)
                let exact = try BlockingClient(port: port)
                #expect(try exact.connect(to: "echo.test:\(echoPort)").status == 200)
            }
        }
        let portPrefixOnly = loopbackConfiguration {
            $0.targetConnection.allowedTargets = try! TargetPattern(#"echo\.test:"# + shortPort)
        }
        try await withTunnel(engine: engine, portPrefixOnly, resolver: resolver) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let longer = try BlockingClient(port: port)
                #expect(try longer.connect(to: "echo.test:\(echoPort)").status == 403)
            }
        }
    }

    // MARK: durations too long for a timer

    @Test(arguments: [
        ("target_connection:\n  relay_policy:\n    max_lifetime: 9223372036854775807s\n", "target_connection.relay_policy.max_lifetime"),
        ("target_connection:\n  connect_timeout: 300000d\n", "target_connection.connect_timeout"),
        ("client_connection:\n  initiation_timeout: 9223372036854775807w\n", "client_connection.initiation_timeout"),
        ("client_connection:\n  relay_policy:\n    idle_timeout: 36500d 1d\n", "client_connection.relay_policy.idle_timeout"),
        ("target_connection:\n  dns_cache_ttl: 5300w\n", "target_connection.dns_cache_ttl"),
    ])
    func absurdlyLongDurationsAreRefusedNamingTheKey(yaml: String, key: String) {
        let error = #expect(throws: ConfigFileError.self) { try TunnelConfiguration(yaml: yaml) }
        #expect(error?.key == key)
        #expect(error.map { "\($0)".contains("100 years") } == true)
    }

    @Test func longDurationsWithinACenturyAreAccepted() throws {
        let configuration = try TunnelConfiguration(yaml: "target_connection:\n  relay_policy:\n    max_lifetime: 36500d\n")
        #expect(configuration.targetConnection.relayPolicy.maxLifetime == .seconds(36500 * 86400))
    }

    @Test func timeAmountsFromDurationsBeyond292YearsSaturate() {
        #expect(TimeAmount(Duration.seconds(Int64.max)) == .nanoseconds(.max))
        #expect(TimeAmount(Duration.seconds(Int64(9_300_000_000))) == .nanoseconds(.max))
        #expect(TimeAmount(Duration.seconds(2) + .nanoseconds(5)) == .nanoseconds(2_000_000_005))
    }

    @Test(arguments: TunnelEngine.tested)
    func aTunnelWithCenturiesLongLimitsStillRelays(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        // Set through the API, which the parser's limit does not guard: every timer must saturate.
        let forever = Duration.seconds(Int64.max)
        let configuration = loopbackConfiguration {
            $0.clientConnection.initiationTimeout = forever
            $0.targetConnection.connectTimeout = forever
            $0.clientConnection.relayPolicy.idleTimeout = forever
            $0.targetConnection.relayPolicy.idleTimeout = forever
            $0.targetConnection.relayPolicy.maxLifetime = forever
        }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            let echoPort = echo.port
            try await onThread {
                let client = try BlockingClient(port: port)
                #expect(try client.connect(to: "127.0.0.1:\(echoPort)").status == 200)
                try client.send("ping")
                #expect(try client.receive(exactly: 4) == Array("ping".utf8))
            }
        }
    }
}
