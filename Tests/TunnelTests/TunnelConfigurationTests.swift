import ConfigFile
import IPAddress
import NIOCore
import Testing

@testable import Tunnel

@Suite("Tunnel configuration")
struct TunnelConfigurationTests {
    /// The anchor's own `config/config.yaml`, key for key.
    static let anchorConfig = #"""
        client_connection:
          initiation_timeout: 10s
          relay_policy:
            idle_timeout: 30s
            min_rate_bpm: 1000
            max_rate_bps: 10000
        target_connection:
          dns_cache_ttl: 60s
          allowed_targets: "^(?i)([a-z]+)\\.(wikipedia|rust-lang)\\.org:443$"
          connect_timeout: 10s
          relay_policy:
            idle_timeout: 10s
            min_rate_bpm: 1000
            max_rate_bps: 10000
        """#

    @Test func parsesTheAnchorsConfigurationFile() throws {
        let configuration = try TunnelConfiguration(yaml: Self.anchorConfig)
        #expect(configuration.clientConnection.initiationTimeout == .seconds(10))
        #expect(configuration.clientConnection.relayPolicy.idleTimeout == .seconds(30))
        #expect(configuration.clientConnection.relayPolicy.minRateBytesPerMinute == 1000)
        #expect(configuration.clientConnection.relayPolicy.maxRateBytesPerSecond == 10000)
        #expect(configuration.targetConnection.dnsCacheTTL == .seconds(60))
        #expect(configuration.targetConnection.connectTimeout == .seconds(10))
        #expect(configuration.targetConnection.relayPolicy.idleTimeout == .seconds(10))
        let pattern = try #require(configuration.targetConnection.allowedTargets)
        #expect(pattern.matches("www.Wikipedia.org:443"))
        #expect(pattern.matches("doc.rust-lang.org:443"))
        #expect(!pattern.matches("example.com:443"))
        #expect(!pattern.matches("www.wikipedia.org:80"))
        // Defaults for what the anchor's file does not say.
        #expect(configuration.maxConnections == TunnelConfiguration.defaultMaxConnections)
        #expect(configuration.targetConnection.deniedNetworks.contains(IPAddress("127.0.0.1")!))
    }

    @Test func parsesTheKeysBeyondTheAnchor() throws {
        let configuration = try TunnelConfiguration(
            yaml: """
                max_connections: 100
                forward_plain_http: true
                log_client_address: yes
                client_connection:
                  proxy_authorization:
                    realm: corp
                    users:
                      alice: "s3cret"
                  relay_policy:
                    max_lifetime: 1h 30m
                    max_total_payload: 10mb
                    min_rate_grace: 500ms
                    max_rate_bps: 1000000000000
                target_connection:
                  denied_networks: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
                  allowed_ports: [443, 8443]
                """)
        #expect(configuration.maxConnections == 100)
        #expect(configuration.forwardPlainHTTP)
        #expect(configuration.logClientAddress)
        #expect(configuration.clientConnection.proxyAuthorization == ProxyAuthorization(realm: "corp", users: ["alice": "s3cret"]))
        let policy = configuration.clientConnection.relayPolicy
        #expect(policy.maxLifetime == .seconds(5400))
        #expect(policy.maxTotalPayload == 10_000_000)
        #expect(policy.minRateGracePeriod == .milliseconds(500))
        #expect(policy.maxRateBytesPerSecond == nil, "10^12 is the anchor's 'no limit'")
        let denied = configuration.targetConnection.deniedNetworks
        #expect(denied.count == 3)
        #expect(denied.contains(IPAddress("10.1.2.3")!))
        #expect(denied.contains(IPAddress("2001:db8::1")!))
        #expect(denied.contains(IPAddress("192.0.2.7")!))
        #expect(!denied.contains(IPAddress("127.0.0.1")!))
        #expect(configuration.targetConnection.allowedPorts == [443, 8443])
    }

    @Test func emptyDeniedNetworksAllowsLoopback() throws {
        let configuration = try TunnelConfiguration(yaml: "target_connection:\n  denied_networks: []\n")
        #expect(configuration.targetConnection.deniedNetworks.isEmpty)
    }

    @Test(arguments: [
        ("client_connection:\n  relay_policy:\n    idle_timout: 5s\n", "client_connection.relay_policy.idle_timout"),
        ("target_connection:\n  tcp_policies: {}\n", "target_connection.tcp_policies"),
        ("clients: 3\n", "clients"),
        ("target_connection:\n  connect_timeout: 10\n", "target_connection.connect_timeout"),
        ("client_connection:\n  initiation_timeout: 10 parsecs\n", "client_connection.initiation_timeout"),
        ("target_connection:\n  relay_policy:\n    max_total_payload: lots\n", "target_connection.relay_policy.max_total_payload"),
        ("target_connection:\n  relay_policy:\n    min_rate_bpm: -5\n", "target_connection.relay_policy.min_rate_bpm"),
        ("target_connection:\n  allowed_targets: \"(unclosed\"\n", "target_connection.allowed_targets"),
        ("target_connection:\n  denied_networks: [\"10.0.0.0/33\"]\n", "target_connection.denied_networks"),
        ("target_connection:\n  allowed_ports: [0]\n", "target_connection.allowed_ports"),
        ("max_connections: 0\n", "max_connections"),
        ("client_connection: 5\n", "client_connection"),
    ])
    func invalidConfigurationNamesTheKey(yaml: String, key: String) {
        let error = #expect(throws: ConfigFileError.self) { try TunnelConfiguration(yaml: yaml) }
        #expect(error?.key == key)
        #expect(error.map { "\($0)".hasPrefix("invalid configuration: \(key): ") } == true)
    }

    /// The messages of the shared readers (`ConfigNode`), as `ipquest tunnel` prints them after the file name.
    @Test(arguments: [
        ("clients: 3\n", "invalid configuration: clients: unknown key (known here: client_connection, forward_plain_http, log_client_address, max_connections, target_connection)"),
        ("max_connections: 0\n", "invalid configuration: max_connections: must be at least 1, got 0"),
        ("max_connections: many\n", "invalid configuration: max_connections: expected an integer, got 'many'"),
        ("forward_plain_http: maybe\n", "invalid configuration: forward_plain_http: expected true or false, got 'maybe'"),
        ("target_connection:\n  connect_timeout: 10\n", "invalid configuration: target_connection.connect_timeout: '10' has no time unit (expected e.g. 10s, 500ms, 1m 30s)"),
        ("target_connection:\n  connect_timeout: [10s]\n", "invalid configuration: target_connection.connect_timeout: expected a duration such as 10s, 500ms or 1m 30s, got a list"),
        ("target_connection:\n  relay_policy:\n    min_rate_bpm: -5\n", "invalid configuration: target_connection.relay_policy.min_rate_bpm: must be at least 0, got -5"),
        ("target_connection:\n  relay_policy:\n    max_total_payload: lots\n", "invalid configuration: target_connection.relay_policy.max_total_payload: 'lots' is not a byte count (expected e.g. 1048576, 10mb, 64kib)"),
        ("target_connection:\n  denied_networks: [[1]]\n", "invalid configuration: target_connection.denied_networks[0]: expected a string, got a list"),
        ("client_connection: 5\n", "invalid configuration: client_connection: expected a mapping"),
        ("client_connection: &c {}\ntarget_connection: *c\n", "invalid configuration: (file): anchors and aliases (&name, *name) are not supported (line 1)"),
        ("max_connections: 1\nmax_connections: 2\n", "invalid configuration: (file): not valid YAML: Parser: expected all keys to be unique but found the following duplicated key(s): 'max_connections'."),
        ("- 1\n", "invalid configuration: (file): expected a mapping of keys"),
    ])
    func invalidConfigurationMessages(yaml: String, message: String) {
        let error = #expect(throws: ConfigFileError.self) { try TunnelConfiguration(yaml: yaml) }
        #expect(error?.description == message)
    }

    /// Null is absent (the default stays); `off` and `none` switch a limit off; an empty list is empty.
    @Test func nullOffAndEmptyValues() throws {
        let configuration = try TunnelConfiguration(yaml: """
            max_connections: off
            forward_plain_http: ~
            client_connection:
              initiation_timeout:
              relay_policy: { idle_timeout: none }
            target_connection:
              denied_networks:
              allowed_ports: "[]"
            """)
        #expect(configuration.maxConnections == nil)
        #expect(!configuration.forwardPlainHTTP)
        #expect(configuration.clientConnection.initiationTimeout == .seconds(10))
        #expect(configuration.clientConnection.relayPolicy.idleTimeout == nil)
        #expect(configuration.targetConnection.deniedNetworks.isEmpty)
        #expect(configuration.targetConnection.allowedPorts.isEmpty)
        #expect(try TunnelConfiguration(yaml: "# nothing but a comment\n").maxConnections == TunnelConfiguration.defaultMaxConnections)
    }

    @Test func durationsFollowTheAnchorsHumantimeFormat() throws {
        #expect(try ConfigSyntax.duration("10s") == .seconds(10))
        #expect(try ConfigSyntax.duration("250ms") == .milliseconds(250))
        #expect(try ConfigSyntax.duration("1m 30s") == .seconds(90))
        #expect(try ConfigSyntax.duration("1h30m") == .seconds(5400))
        #expect(try ConfigSyntax.duration("2h") == .seconds(7200))
        #expect(try ConfigSyntax.duration("1day") == .seconds(86400))
        #expect(throws: ConfigFileError.self) { try ConfigSyntax.duration("10") }
        #expect(throws: ConfigFileError.self) { try ConfigSyntax.duration("s") }
        #expect(throws: ConfigFileError.self) { try ConfigSyntax.duration("") }
        #expect(throws: ConfigFileError.self) { try ConfigSyntax.duration("-1s") }
    }

    @Test func byteCounts() throws {
        #expect(try ConfigSyntax.byteCount("1048576") == 1_048_576)
        #expect(try ConfigSyntax.byteCount("10mb") == 10_000_000)
        #expect(try ConfigSyntax.byteCount("64 KiB") == 65536)
        #expect(try ConfigSyntax.byteCount("1GiB") == 1 << 30)
        #expect(throws: ConfigFileError.self) { try ConfigSyntax.byteCount("10 parsecs") }
        #expect(throws: ConfigFileError.self) { try ConfigSyntax.byteCount("99999999999 tib") }
    }

    @Test func defaultDeniedNetworksCoverPrivateLoopbackLinkLocalCGNATAndMulticast() {
        let denied = TargetConnectionConfiguration.defaultDeniedNetworks
        for text in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.1.1", "100.64.0.1", "224.0.0.251",
                     "::1", "fe80::1", "fd00::1", "ff02::1", "0.0.0.0"] {
            #expect(denied.contains(IPAddress(text)!), "\(text) should be denied")
        }
        for text in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            #expect(!denied.contains(IPAddress(text)!), "\(text) should be allowed")
        }
    }
}

@Suite("Request head parsing")
struct RequestHeadTests {
    func parse(_ text: String, forwarding: Bool = false) -> HeadParseOutcome {
        ProxyRequestHeadParser.parse(Array(text.utf8), allowForwarding: forwarding)
    }

    @Test func connectWithHeadersAndPipelinedBytes() throws {
        let text = "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\nProxy-Authorization: Basic YTpi\r\n\r\nEARLY"
        guard case .complete(let head, let length) = parse(text) else {
            Issue.record("expected a complete head")
            return
        }
        #expect(head.target == TargetAddress(host: "example.org", port: 443))
        #expect(head.requestTarget == "example.org:443")
        #expect(head.proxyAuthorization == "Basic YTpi")
        #expect(head.kind == .connect)
        #expect(length == text.utf8.count - 5)
    }

    @Test func ipv6Authority() {
        guard case .complete(let head, _) = parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n") else {
            Issue.record("expected a complete head")
            return
        }
        #expect(head.target == TargetAddress(host: "::1", port: 8443))
        #expect(head.target.description == "[::1]:8443")
    }

    @Test func partialHeadWaits() {
        #expect(parse("CONNECT example.org:443 HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        #expect(parse("CONN") == .incomplete)
    }

    @Test(arguments: [
        "CONNECT  example.org:443 HTTP/1.1\r\n\r\n",
        "CONNECT example.org:443 HTTP/2.0\r\n\r\n",
        "CONNECT example.org HTTP/1.1\r\n\r\n",
        "CONNECT example.org:99999 HTTP/1.1\r\n\r\n",
        "CONNECT example.org:443\tHTTP/1.1\r\n\r\n",
        "CONNECT example.org:443 HTTP/1.1\r\nno colon here\r\n\r\n",
        "CONNECT exa\u{01}mple.org:443 HTTP/1.1\r\n\r\n",
    ])
    func malformedHeadsAre400(_ text: String) {
        guard case .rejected(let status, _) = parse(text) else {
            Issue.record("expected a rejection for \(text.debugDescription)")
            return
        }
        #expect(status == .badRequest)
    }

    @Test func oversizedHeadIs400() {
        let text = "CONNECT example.org:443 HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 16 * 1024)
        #expect(parse(text) == .rejected(.badRequest, detail: "request head too large"))
    }

    @Test func otherMethodsAre405UnlessForwarding() {
        guard case .rejected(let status, _) = parse("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n") else {
            Issue.record("expected a rejection")
            return
        }
        #expect(status == .methodNotAllowed)
        // Lowercase is not CONNECT.
        guard case .rejected(let lower, _) = parse("connect example.org:443 HTTP/1.1\r\n\r\n") else {
            Issue.record("expected a rejection")
            return
        }
        #expect(lower == .methodNotAllowed)
    }

    @Test func absoluteFormIsRewrittenToOriginFormWhenForwarding() {
        let text = "GET http://example.org:8080/a/b?c=1 HTTP/1.1\r\nHost: example.org:8080\r\nProxy-Authorization: Basic YTpi\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"
        guard case .complete(let head, _) = parse(text, forwarding: true),
              case .forward(let originFormHead) = head.kind
        else {
            Issue.record("expected a forwardable head")
            return
        }
        #expect(head.target == TargetAddress(host: "example.org", port: 8080))
        #expect(originFormHead == "GET /a/b?c=1 HTTP/1.1\r\nHost: example.org:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n")
    }

    @Test func basicCredentials() {
        let users = ["alice": "s3cret"]
        let good = "Basic " + Base64.encode(Array("alice:s3cret".utf8))
        #expect(BasicProxyCredentials.isAuthorized(good, users: users))
        #expect(!BasicProxyCredentials.isAuthorized("Basic " + Base64.encode(Array("alice:wrong".utf8)), users: users))
        #expect(!BasicProxyCredentials.isAuthorized("Basic " + Base64.encode(Array("bob:s3cret".utf8)), users: users))
        #expect(!BasicProxyCredentials.isAuthorized("Bearer abc", users: users))
        #expect(!BasicProxyCredentials.isAuthorized(nil, users: users))
        #expect(Base64.decode("YWxpY2U6czNjcmV0") == Array("alice:s3cret".utf8))
    }

    @Test func tokenBucketReleasesAtTheConfiguredRate() {
        let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
        var bucket = TokenBucket(bytesPerSecond: 100_000, now: start)
        // The burst (a tenth of a second) passes at once; the next 100 kB is due one second later.
        #expect(bucket.spend(10_000, now: start) == start)
        let due = bucket.spend(100_000, now: start)
        #expect(due == start + .seconds(1))
    }
}
