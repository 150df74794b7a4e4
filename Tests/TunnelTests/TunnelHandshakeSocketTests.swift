import Foundation
import NIOCore
import Testing

@testable import Tunnel

/// The handshake's rules that the engines carry out on real sockets, each on both engines.
@Suite("Tunnel handshake over loopback", .timeLimit(.minutes(1)))
struct TunnelHandshakeSocketTests {
    @Test(arguments: TunnelEngine.tested) func aClientThatHalfClosesRightAfterItsRequestStillGetsItsTunnel(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                try client.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\nlast words")
                client.shutdownWrite()
                let head = try client.receiveResponseHead()
                #expect(head.statusLine == "HTTP/1.1 200 Connection Established")
                let echoed = head.rest + (try client.receiveUntilEOF())
                #expect(String(decoding: echoed, as: UTF8.self) == "last words")
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func inputEndingMidHeadIs400AndTheConnectionClosesAtOnce(engine: TunnelEngine) async throws {
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let client = try BlockingClient(port: port)
                try client.send("CONNECT 127.0.0.1:80 HTTP/1.1\r\n")
                client.shutdownWrite()
                let start = ContinuousClock.now
                let head = try client.receiveResponseHead()
                #expect(head.statusLine == "HTTP/1.1 400 Bad Request")
                _ = try client.receiveUntilEOF()
                // Nothing is left to drain, so there is no wait for the drain's 2 s.
                #expect(seconds(since: start) < 1.5)
            }
        }
    }

    @Test(arguments: TunnelEngine.tested) func tcpModeOverTheCapClosesWithoutAnHTTPAnswer(engine: TunnelEngine) async throws {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let mode = TunnelMode.tcp(destination: TargetAddress(host: "127.0.0.1", port: echo.port))
        try await withTunnel(engine: engine, loopbackConfiguration { $0.maxConnections = 1 }, mode: mode) { server in
            let port = server.localAddress!.port!
            try await onThread {
                let first = try BlockingClient(port: port)
                try first.send("one")
                #expect(try first.receive(exactly: 3) == Array("one".utf8))
                let second = try BlockingClient(port: port)
                #expect(try second.receiveUntilEOF().isEmpty, "the client speaks its own protocol, not HTTP")
                try first.send("two")
                #expect(try first.receive(exactly: 3) == Array("two".utf8))
            }
        }
    }
}
