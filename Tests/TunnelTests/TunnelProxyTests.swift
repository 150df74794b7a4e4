import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import Tunnel

/// Real sockets on loopback: a client speaking CONNECT, the tunnel, and a target started by the test.
@Suite("CONNECT proxy over loopback", .timeLimit(.minutes(1)))
struct TunnelProxyTests {
    @Test(arguments: TunnelEngine.tested) func connectRelaysBothWaysAndDeliversBytesPipelinedAfterTheHead(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                // The head and the first payload bytes in one write, as an eager TLS client does.
                let answer = try client.connect(to: "127.0.0.1:\(echo.port)", earlyData: "early-bytes|")
                #expect(answer.status == 200)
                // The echo of the early bytes can arrive in the same recv as the 200 head: connect returns
                // whatever followed the head as `body`, so it counts towards the echo.
                var echoed = Array(answer.body.utf8)
                try client.send("second")
                echoed += try client.receive(exactly: "early-bytes|second".utf8.count - echoed.count)
                #expect(String(decoding: echoed, as: UTF8.self) == "early-bytes|second")
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func namesAreResolvedByTheConfiguredResolver(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                #expect(try client.connect(to: "echo.test:\(echo.port)").status == 200)
                try client.send("ping")
                #expect(try client.receive(exactly: 4) == Array("ping".utf8))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func halfCloseFromTheClientStillDeliversTheTargetsAnswer(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                #expect(try client.connect(to: "127.0.0.1:\(echo.port)").status == 200)
                let payload = patternBytes(count: 300_000)
                try client.send(payload)
                client.shutdownWrite()
                // The echo server answers everything, then half-closes back: the client sees all bytes, then EOF.
                let received = try client.receiveUntilEOF()
                #expect(received.count == payload.count)
                let identical = received.elementsEqual(payload)
                #expect(identical, "relayed bytes differ from those sent")
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func largePayloadsBothWaysAreRelayedIntact(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            let payload = patternBytes(count: 32 << 20)
            let client = try await onThread { () -> BlockingClient in
                let client = try BlockingClient(port: port)
                #expect(try client.connect(to: "127.0.0.1:\(echo.port)").status == 200)
                return client
            }
            // Send and receive at once: the echo path must apply backpressure, not buffer 32 MiB.
            async let sent: Void = onThread {
                try client.send(payload)
                client.shutdownWrite()
            }
            let received = try await onThread { try client.receiveUntilEOF(limit: 40 << 20) }
            try await sent
            #expect(received.count == payload.count)
            let identical = received.elementsEqual(payload)
            #expect(identical, "relayed bytes differ from those sent")
        }
    }

    @Test(arguments: TunnelEngine.tested) func targetsNotMatchingAllowedTargetsAre403(engine: TunnelEngine) async throws {
        let configuration = loopbackConfiguration {
            $0.targetConnection.allowedTargets = try! TargetPattern(#"^echo\.test:\d+$"#)
        }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let answer = try BlockingClient(port: port).connect(to: "127.0.0.1:9")
                #expect(answer.status == 403)
                #expect(answer.headers.contains("Connection: close"))
                #expect(answer.body.contains("not allowed"))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func portsOutsideTheAllowlistAre403(engine: TunnelEngine) async throws {
        let configuration = loopbackConfiguration { $0.targetConnection.allowedPorts = [443] }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let answer = try BlockingClient(port: port).connect(to: "127.0.0.1:22")
                #expect(answer.status == 403)
                #expect(answer.body.contains("port"))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func deniedNetworksAre403ByDefaultForLoopbackLiteralsAndResolvedNames(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        var configuration = loopbackConfiguration()
        configuration.targetConnection.deniedNetworks = TargetConnectionConfiguration.defaultDeniedNetworks
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread { () throws -> Void in
                #expect(try BlockingClient(port: port).connect(to: "127.0.0.1:\(echo.port)").status == 403)
                #expect(try BlockingClient(port: port).connect(to: "[::1]:\(echo.port)").status == 403)
                // A name that resolves into a denied network is refused after resolution.
                #expect(try BlockingClient(port: port).connect(to: "echo.test:\(echo.port)").status == 403)
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func malformedRequestIs400AndOversizedHeadIs400(engine: TunnelEngine) async throws {
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                try client.send("CONNECT  127.0.0.1:80 HTTP/1.1\r\n\r\n")
                let head = try client.receiveResponseHead()
                #expect(head.statusLine == "HTTP/1.1 400 Bad Request")
                #expect(head.headers.contains("Connection: close"))

                let big = try BlockingClient(port: port)
                try big.send("CONNECT 127.0.0.1:80 HTTP/1.1\r\nX-Filler: " + String(repeating: "x", count: 17_000))
                #expect(try big.receiveResponseHead().statusLine == "HTTP/1.1 400 Bad Request")
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func otherMethodsAre405(engine: TunnelEngine) async throws {
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                try client.send("GET http://127.0.0.1:80/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                let head = try client.receiveResponseHead()
                #expect(head.statusLine == "HTTP/1.1 405 Method Not Allowed")
                #expect(head.headers.contains("Allow: CONNECT"))
                #expect(head.headers.contains("Connection: close"))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func proxyAuthorizationIsRequiredWhenUsersAreConfigured(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let configuration = loopbackConfiguration {
            $0.clientConnection.proxyAuthorization = ProxyAuthorization(realm: "tests", users: ["alice": "s3cret"])
        }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let anonymous = try BlockingClient(port: port).connect(to: "127.0.0.1:\(echo.port)")
                #expect(anonymous.status == 407)
                #expect(anonymous.headers.contains("Proxy-Authenticate: Basic realm=\"tests\""))
                let wrong = try BlockingClient(port: port).connect(
                    to: "127.0.0.1:\(echo.port)",
                    extraHeaders: ["Proxy-Authorization: Basic " + Base64.encode(Array("alice:nope".utf8))])
                #expect(wrong.status == 407)
                let client = try BlockingClient(port: port)
                let good = try client.connect(
                    to: "127.0.0.1:\(echo.port)",
                    extraHeaders: ["Proxy-Authorization: Basic " + Base64.encode(Array("alice:s3cret".utf8))])
                #expect(good.status == 200)
                try client.send("authorized")
                #expect(try client.receive(exactly: 10) == Array("authorized".utf8))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func incompleteHeadTimesOutWith408(engine: TunnelEngine) async throws {
        let configuration = loopbackConfiguration { $0.clientConnection.initiationTimeout = .milliseconds(300) }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                try client.send("CONNECT 127.0.0.1:80 HTTP/1.1\r\n")
                let start = ContinuousClock.now
                #expect(try client.receiveResponseHead().statusLine == "HTTP/1.1 408 Request Timeout")
                let waited = seconds(since: start)
                #expect(waited > 0.2 && waited < 3)
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func refusedTargetIs502(engine: TunnelEngine) async throws {
        // Bind and close a listener to get a loopback port with nobody listening.
        let closed = try await LoopbackServer.echo()
        let deadPort = closed.port
        await closed.close()
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let answer = try BlockingClient(port: port).connect(to: "127.0.0.1:\(deadPort)")
                #expect(answer.status == 502)
                #expect(answer.headers.contains("Connection: close"))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func resolutionFailureIs502(engine: TunnelEngine) async throws {
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                // The test resolver knows only echo.test; nothing leaves the machine.
                let answer = try BlockingClient(port: port).connect(to: "no-such-name.test:443")
                #expect(answer.status == 502)
                #expect(answer.body.contains("resolve"))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func everyResolvedAddressIsTriedInTurn(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        // 127.0.0.2 has nothing on the echo port: refused, then 127.0.0.1 answers.
        let resolver = FixedResolver(table: ["multi.test": ["127.0.0.2", "127.0.0.1"]])
        try await withTunnel(engine: engine, loopbackConfiguration(), resolver: resolver) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                #expect(try client.connect(to: "multi.test:\(echo.port)").status == 200)
                try client.send("x")
                #expect(try client.receive(exactly: 1) == [UInt8(ascii: "x")])
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func connectTimeoutIs504(engine: TunnelEngine) async throws {
        let blackhole = try BlackholeListener()
        let configuration = loopbackConfiguration { $0.targetConnection.connectTimeout = .milliseconds(400) }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            let targetPort = blackhole.port
            try await onThread {
                let start = ContinuousClock.now
                let answer = try BlockingClient(port: port).connect(to: "127.0.0.1:\(targetPort)")
                #expect(answer.status == 504)
                let waited = seconds(since: start)
                #expect(waited > 0.3 && waited < 3)
            }
        }
        withExtendedLifetime(blackhole) {}
    }

    @Test(arguments: TunnelEngine.tested) func connectionsBeyondTheCapGet503(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let configuration = loopbackConfiguration { $0.maxConnections = 1 }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let first = try BlockingClient(port: port)
                #expect(try first.connect(to: "127.0.0.1:\(echo.port)").status == 200)
                let second = try BlockingClient(port: port)
                let answer = try second.connect(to: "127.0.0.1:\(echo.port)")
                #expect(answer.status == 503)
                #expect(answer.headers.contains("Connection: close"))
                // The first tunnel still works.
                try first.send("still")
                #expect(try first.receive(exactly: 5) == Array("still".utf8))
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func absoluteFormGetIsForwardedWhenEnabled(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let configuration = loopbackConfiguration { $0.forwardPlainHTTP = true }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                try client.send(
                    "GET http://127.0.0.1:\(echo.port)/path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:\(echo.port)\r\nProxy-Connection: keep-alive\r\n\r\n")
                // The echo target returns exactly what it was sent: the origin-form request.
                let expected = "GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:\(echo.port)\r\nConnection: close\r\n\r\n"
                let echoed = try client.receive(exactly: expected.utf8.count)
                #expect(String(decoding: echoed, as: UTF8.self) == expected)
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func tcpModeRelaysToTheFixedDestination(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let mode = TunnelMode.tcp(destination: TargetAddress(host: "127.0.0.1", port: echo.port))
        try await withTunnel(engine: engine, loopbackConfiguration(), mode: mode) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                let payload = patternBytes(count: 100_000)
                try client.send(payload)
                client.shutdownWrite()
                let echoed = try client.receiveUntilEOF()
                #expect(echoed.count == payload.count)
                let identical = echoed.elementsEqual(payload)
                #expect(identical, "relayed bytes differ from those sent")
            }
        }
    }

    /// The target's last bytes and its FIN often arrive together; the epoll engine then takes a short read as
    /// the end of the data (no read for the EOF) and sends them with the FIN. Sizes around its 256 KiB read
    /// buffer: a read that fills the buffer must not be taken for the last one.
    @Test(arguments: TunnelEngine.tested) func targetDataFollowedAtOnceByItsCloseArrivesWhole(engine: TunnelEngine) async throws {
        for size in [1, 100, 65_536, 262_143, 262_144, 262_145, 1_000_000] {
            let payload = patternBytes(count: size, seed: UInt64(size))
            let target = try await LoopbackServer.start { SendThenCloseHandler(bytes: payload) }
            let mode = TunnelMode.tcp(destination: TargetAddress(host: "127.0.0.1", port: target.port))
            try await withTunnel(engine: engine, loopbackConfiguration(), mode: mode) { server in
                let port = server.localAddress!.port!
                try await onThread {
                    let client = try BlockingClient(port: port)
                    let received = try client.receiveUntilEOF()
                    #expect(received.count == size)
                    let identical = received.elementsEqual(payload)
                    #expect(identical, "relayed bytes differ from those sent (\(size) bytes)")
                }
            }
            await target.close()
        }
    }
}

@Suite("Tunnel lifecycle", .timeLimit(.minutes(1)))
struct TunnelLifecycleTests {
    @Test(arguments: TunnelEngine.tested) func endedTunnelsAreFreedAndTheirConnectionSlotsReleased(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration { $0.maxConnections = 100 }) { server in
            let port = server.localAddress!.port!
            try await onThread {
                for round in 0..<20 {
                    let client = try BlockingClient(port: port)
                    #expect(try client.connect(to: "127.0.0.1:\(echo.port)").status == 200)
                    try client.send("round \(round)")
                    _ = try client.receive(exactly: "round \(round)".utf8.count)
                    if round % 2 == 0 { client.shutdownWrite() }  // half the tunnels end by EOF, half by close
                }
            }
            // Every client is gone: the relays must be released and the slots returned, promptly.
            let deadline = ContinuousClock.now + .seconds(5)
            while (server.liveTunnelCount > 0 || server.activeConnectionCount > 0) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(server.liveTunnelCount == 0)
            #expect(server.activeConnectionCount == 0)
        }
    }
}

#if os(Linux)
@Suite("Epoll loops pinned to CPUs", .timeLimit(.minutes(1)))
struct EpollPinningTests {
    /// The CPUs a thread of this process may run on, from its /proc entry (`Cpus_allowed_list`, e.g. "0-1,4").
    static func allowedCPUs(thread: Int32) throws -> Set<Int> {
        let status = try String(contentsOfFile: "/proc/self/task/\(thread)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        var cpus = Set<Int>()
        for range in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(separator: ",") {
            let bounds = range.split(separator: "-").compactMap { Int($0) }
            cpus.formUnion(bounds[0]...(bounds.last ?? bounds[0]))
        }
        return cpus
    }

    static func loopThreads(of server: TunnelServer) async throws -> [Int32] {
        let deadline = ContinuousClock.now + .seconds(5)
        while server.epollThreadIDs.contains(0) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        return server.epollThreadIDs
    }

    @Test func pinnedLoopsEachRunOnOneCPUOfTheProcessAndStillRelay() async throws {
        let process = try Self.allowedCPUs(thread: Int32(getpid()))
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: .epoll, loopbackConfiguration(), threads: 3, pinThreads: true) { server in
            let threads = try await Self.loopThreads(of: server)
            #expect(threads.count == 3 && !threads.contains(0))
            let pinned = try threads.map { try Self.allowedCPUs(thread: $0) }
            for cpus in pinned {
                #expect(cpus.count == 1 && cpus.isSubset(of: process), "loop pinned to \(cpus) of \(process)")
            }
            // Loops take the CPUs in turn: as many different ones as there are (up to the three loops).
            #expect(Set(pinned.flatMap { $0 }).count == min(3, process.count))
            let port = server.localAddress!.port!
            try await onThread {
                // Connections land on the loop of the CPU that handles their packets: every one must relay.
                for round in 0..<24 {
                    let client = try BlockingClient(port: port)
                    #expect(try client.connect(to: "127.0.0.1:\(echo.port)").status == 200)
                    try client.send("round \(round)")
                    #expect(String(decoding: try client.receive(exactly: "round \(round)".utf8.count), as: UTF8.self) == "round \(round)")
                }
            }
        }
    }

    @Test func unpinnedLoopsKeepEveryCPUOfTheProcess() async throws {
        let process = try Self.allowedCPUs(thread: Int32(getpid()))
        try await withTunnel(engine: .epoll, loopbackConfiguration(), threads: 2, pinThreads: false) { server in
            for thread in try await Self.loopThreads(of: server) {
                #expect(try Self.allowedCPUs(thread: thread) == process)
            }
        }
    }

    @Test func byDefaultLoopsArePinnedOnlyWhenThereIsOnePerCPU() throws {
        let cpus = try Self.allowedCPUs(thread: Int32(getpid())).sorted().map { Int32($0) }
        #expect(EpollLoop.pinnedCPUs(count: cpus.count + 1, pin: nil) == nil)
        #expect(EpollLoop.pinnedCPUs(count: cpus.count, pin: false) == nil)
        #expect(EpollLoop.pinnedCPUs(count: cpus.count, pin: nil) == (cpus.count > 1 ? cpus : nil))
        #expect(EpollLoop.pinnedCPUs(count: cpus.count + 1, pin: true) == cpus + [cpus[0]])
    }
}
#endif

/// Counts the lookups that reach it.
final class CountingResolver: TargetNameResolver, @unchecked Sendable {
    private let lock = NSLock()
    private var lookups = 0
    var count: Int { lock.withLock { lookups } }

    func resolve(host: String, port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]> {
        lock.withLock { lookups += 1 }
        return eventLoop.makeCompletedFuture { [try SocketAddress(ipAddress: "127.0.0.1", port: port)] }
    }
}

@Suite("DNS cache")
struct CachingNameResolverTests {
    @Test func answersAreReusedUntilTheTTLThenResolvedAgain() async throws {
        let upstream = CountingResolver()
        // A TTL long enough that the first lookups stay within it on a loaded machine (parallel tests).
        let cache = CachingNameResolver(upstream: upstream, ttl: .seconds(1))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let first = try await cache.resolve(host: "a.test", port: 443, on: loop).get()
        let second = try await cache.resolve(host: "a.test", port: 443, on: loop).get()
        #expect(first == second)
        #expect(first.first?.port == 443)
        #expect(upstream.count == 1)
        // Another port is another entry.
        _ = try await cache.resolve(host: "a.test", port: 80, on: loop).get()
        #expect(upstream.count == 2)
        try await Task.sleep(for: .milliseconds(1100))
        _ = try await cache.resolve(host: "a.test", port: 443, on: loop).get()
        #expect(upstream.count == 3, "an expired entry is resolved again")
    }

    @Test func theCacheEvictsToStayWithinItsCapacity() async throws {
        let upstream = CountingResolver()
        let cache = CachingNameResolver(upstream: upstream, ttl: .seconds(60), capacity: 2)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        for name in ["a.test", "b.test", "c.test", "d.test"] {
            _ = try await cache.resolve(host: name, port: 443, on: loop).get()
        }
        #expect(cache.count == 2)
        #expect(upstream.count == 4)
        // The newest entry is still cached.
        _ = try await cache.resolve(host: "d.test", port: 443, on: loop).get()
        #expect(upstream.count == 4)
    }

    @Test func failuresAreNotCached() async throws {
        let cache = CachingNameResolver(upstream: FixedResolver(table: [:]), ttl: .seconds(60))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        await #expect(throws: NameResolutionError.self) { try await cache.resolve(host: "x.test", port: 1, on: loop).get() }
        #expect(cache.count == 0)
    }
}
