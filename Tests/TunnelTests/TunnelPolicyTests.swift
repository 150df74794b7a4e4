import Foundation
import NIOCore
import Testing

@testable import Tunnel

/// Relay policies, enforced for real on loopback. Serialized: these measure time.
@Suite("Relay policies", .serialized, .timeLimit(.minutes(1)))
struct TunnelPolicyTests {
    /// Opens a tunnel to a fresh echo server, runs `body` with the client on its own thread.
    func withEchoTunnel(
        engine: TunnelEngine,
        _ adjust: @escaping (inout TunnelConfiguration) -> Void,
        _ body: @escaping @Sendable (BlockingClient) throws -> Void
    ) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration(adjust)) { server in
            let port = server.localAddress!.port!
            let echoPort = echo.port
            try await onThread {
                let client = try BlockingClient(port: port)
                #expect(try client.connect(to: "127.0.0.1:\(echoPort)").status == 200)
                try body(client)
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func idleTunnelIsClosedAfterTheIdleTimeout(engine: TunnelEngine) async throws {
        try await withEchoTunnel(engine: engine, {
            $0.clientConnection.relayPolicy.idleTimeout = .milliseconds(400)
            $0.targetConnection.relayPolicy.idleTimeout = .milliseconds(400)
        }) { client in
            // Traffic keeps it open past the timeout…
            for _ in 0..<4 {
                try client.send("k")
                #expect(try client.receive(exactly: 1) == [UInt8(ascii: "k")])
                usleep(200_000)
            }
            // …silence closes it.
            let start = ContinuousClock.now
            #expect(try client.receiveUntilEOF().isEmpty)
            let waited = seconds(since: start)
            #expect(waited > 0.15 && waited < 2.0, "closed after \(waited) s")
        }
    }

    @Test(arguments: TunnelEngine.tested) func tunnelIsClosedAtItsMaximumLifetime(engine: TunnelEngine) async throws {
        let start = ContinuousClock.now
        try await withEchoTunnel(engine: engine, { $0.targetConnection.relayPolicy.maxLifetime = .milliseconds(600) }) { client in
            var closed = false
            for _ in 0..<40 where !closed {
                do {
                    try client.send("x")
                    let got = try client.receiveSome(max: 1)
                    closed = got.isEmpty
                } catch {
                    closed = true
                }
                usleep(50_000)
            }
            #expect(closed)
            let lived = seconds(since: start)
            #expect(lived > 0.5 && lived < 2.5, "lived \(lived) s")
        }
    }

    @Test(arguments: TunnelEngine.tested) func payloadCapDeliversExactlyTheCapThenCloses(engine: TunnelEngine) async throws {
        try await withEchoTunnel(engine: engine, { $0.targetConnection.relayPolicy.maxTotalPayload = 1000 }) { client in
            try client.send(patternBytes(count: 5000))
            let received = try client.receiveUntilEOF()
            #expect(received.count == 1000)
            let identical = received.elementsEqual(patternBytes(count: 5000).prefix(1000))
            #expect(identical, "relayed bytes differ from those sent")
        }
    }

    @Test(arguments: TunnelEngine.tested) func tooSlowSenderIsCut(engine: TunnelEngine) async throws {
        try await withEchoTunnel(engine: engine, {
            // 10 kB per minute needed after 300 ms; the client trickles 100 B/s (6 kB/min).
            $0.clientConnection.relayPolicy.minRateBytesPerMinute = 10_000
            $0.clientConnection.relayPolicy.minRateGracePeriod = .milliseconds(300)
        }) { client in
            let start = ContinuousClock.now
            var closed = false
            for _ in 0..<30 where !closed {
                do {
                    try client.send("0123456789")
                    closed = try client.receiveSome().isEmpty
                } catch {
                    closed = true
                }
                usleep(100_000)
            }
            #expect(closed)
            let waited = seconds(since: start)
            #expect(waited > 0.25 && waited < 2.5, "cut after \(waited) s")
        }
    }

    @Test(arguments: TunnelEngine.tested) func maxRateThrottlesToTheConfiguredRateWithinTenPercent(engine: TunnelEngine) async throws {
        let rate = 256 * 1024
        let total = 768 * 1024
        try await withEchoTunnel(engine: engine, { $0.clientConnection.relayPolicy.maxRateBytesPerSecond = UInt64(rate) }) { client in
            let payload = patternBytes(count: total)
            let start = ContinuousClock.now
            let sender = Thread {
                try? client.send(payload)
            }
            sender.start()
            let received = try client.receive(exactly: total)
            let elapsed = seconds(since: start)
            let identical = received.elementsEqual(payload)
            #expect(identical, "relayed bytes differ from those sent")
            // The bucket lets a tenth of a second through at once; the rest flows at `rate`.
            let burst = Double(rate) / 10
            let measured = (Double(total) - burst) / elapsed
            #expect(abs(measured - Double(rate)) / Double(rate) < 0.10, "measured \(Int(measured)) B/s for \(rate)")
        }
    }
}

/// Real clients: curl through the `http` and the TLS-terminating `https` listener.
@Suite("curl through the tunnel", .timeLimit(.minutes(1)))
struct TunnelCurlTests {
    static let curlPath = "/usr/bin/curl"

    func runCurl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.curlPath)
        process.arguments = ["--silent", "--show-error", "--max-time", "10", "--noproxy", ""] + arguments
        var environment = ProcessInfo.processInfo.environment
        for name in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"] {
            environment[name] = nil
        }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: curlPath)), arguments: TunnelEngine.tested)
    func curlProxytunnelThroughHTTPListener(engine: TunnelEngine) async throws {
        let web = try await LoopbackServer.start { HTTPResponderHandler(body: "hello through the tunnel") }
        defer { Task { await web.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            let result = try await onThread {
                try runCurl(["--proxytunnel", "--proxy", "http://127.0.0.1:\(port)", "http://127.0.0.1:\(web.port)/x"])
            }
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output == "hello through the tunnel")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: curlPath)))
    func curlThroughTLSListenerWithPEMAndWithPKCS12() async throws {
        let web = try await LoopbackServer.start { HTTPResponderHandler(body: "hello over tls") }
        defer { Task { await web.close() } }
        let files = try TestCertificate.writeFiles()
        let contexts = [
            try TunnelTLS.serverContext(certificateChainPEMFile: files.certificate, privateKeyPEMFile: files.key),
            try TunnelTLS.serverContext(pkcs12File: files.pkcs12, password: "test"),
        ]
        for context in contexts {
            try await withTunnel(loopbackConfiguration(), mode: .https(context)) { server in
                let port = server.localAddress!.port!
                let result = try await onThread {
                    try runCurl([
                        "--proxytunnel", "--proxy", "https://127.0.0.1:\(port)", "--proxy-cacert", files.certificate,
                        "http://127.0.0.1:\(web.port)/x",
                    ])
                }
                #expect(result.status == 0, "\(result.output)")
                #expect(result.output == "hello over tls")
            }
        }
    }

    static let python3Path: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin")
        .split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A Python client: CONNECT with the first request pipelined in the same write, then a second request.
    static let pythonClient = #"""
        import socket, sys
        proxy_port, target_port = int(sys.argv[1]), int(sys.argv[2])
        s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        req = b"GET /p HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (target_port, target_port) + req)
        data = b""
        while data.count(b"python ok") < 1:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        s.sendall(req)
        while data.count(b"python ok") < 2:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        print(data.split(b"\r\n")[0].decode(), data.count(b"python ok"))
        """#

    @Test(.enabled(if: python3Path != nil), arguments: TunnelEngine.tested)
    func pythonClientWithPipelinedRequest(engine: TunnelEngine) async throws {
        let web = try await LoopbackServer.start { HTTPResponderHandler(body: "python ok") }
        defer { Task { await web.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            let output = try await onThread { () throws -> String in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Self.python3Path!)
                process.arguments = ["-c", Self.pythonClient, String(port), String(web.port)]
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = pipe
                try process.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return String(decoding: data, as: UTF8.self)
            }
            #expect(output == "HTTP/1.1 200 Connection Established 2\n")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: curlPath)), arguments: TunnelEngine.tested)
    func curlSeesThe407Challenge(engine: TunnelEngine) async throws {
        let configuration = loopbackConfiguration {
            $0.clientConnection.proxyAuthorization = ProxyAuthorization(users: ["alice": "s3cret"])
        }
        let web = try await LoopbackServer.start { HTTPResponderHandler(body: "secret page") }
        defer { Task { await web.close() } }
        try await withTunnel(engine: engine, configuration) { server in
            let port = server.localAddress!.port!
            let refused = try await onThread {
                try runCurl(["--proxytunnel", "--proxy", "http://127.0.0.1:\(port)", "http://127.0.0.1:\(web.port)/"])
            }
            #expect(refused.status != 0)
            #expect(refused.output.contains("407"))
            let allowed = try await onThread {
                try runCurl([
                    "--proxytunnel", "--proxy", "http://127.0.0.1:\(port)", "--proxy-user", "alice:s3cret",
                    "http://127.0.0.1:\(web.port)/",
                ])
            }
            #expect(allowed.status == 0, "\(allowed.output)")
            #expect(allowed.output == "secret page")
        }
    }
}
