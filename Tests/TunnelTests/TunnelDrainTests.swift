import Foundation
import Testing
@testable import Tunnel

/// A graceful stop (`TunnelServer.drain`, what `ipquest tunnel` does on SIGTERM or SIGINT):
/// no new connection is accepted, open tunnels carry on until they end, and the drain gives up
/// at its deadline.
@Suite struct TunnelDrainTests {
    /// Whether a new client can still connect to the listener.
    static func accepting(_ port: Int) -> Bool {
        (try? BlockingClient(port: port, timeoutSeconds: 2)) != nil
    }

    @Test(arguments: TunnelEngine.tested)
    func openTunnelsCarryOnAndTheDrainEndsWithTheLast(engine: TunnelEngine) async throws {
        let target = try await LoopbackServer.echo()
        defer { Task { await target.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let port = server.localAddress!.port!
            let client = try BlockingClient(port: port)
            #expect(try client.connect(to: "echo.test:\(target.port)").status == 200)
            try client.send("before")
            #expect(String(decoding: try client.receive(exactly: 6), as: UTF8.self) == "before")

            // `close` returns once the listener is closed; the drain that follows finds it closed.
            try await server.close()
            #expect(!Self.accepting(port))
            let drain = Task { await server.drain(timeout: .seconds(30)) }
            // The open tunnel still relays.
            try client.send("during")
            #expect(String(decoding: try client.receive(exactly: 6), as: UTF8.self) == "during")
            #expect(server.activeConnectionCount == 1)
            client.shutdownWrite()
            _ = try client.receiveUntilEOF()
            #expect(await drain.value == true)
            #expect(server.activeConnectionCount == 0)
        }
    }

    @Test(arguments: TunnelEngine.tested)
    func theDrainGivesUpAtItsDeadline(engine: TunnelEngine) async throws {
        let target = try await LoopbackServer.echo()
        defer { Task { await target.close() } }
        try await withTunnel(engine: engine, loopbackConfiguration()) { server in
            let client = try BlockingClient(port: server.localAddress!.port!)
            #expect(try client.connect(to: "echo.test:\(target.port)").status == 200)
            let started = ContinuousClock.now
            #expect(await server.drain(timeout: .milliseconds(300)) == false)
            #expect(ContinuousClock.now - started < .seconds(5))
            // A drain with nothing open returns at once.
            client.shutdownWrite()
            _ = try client.receiveUntilEOF()
            await server.context.waitUntilNoConnections()
            #expect(await server.drain(timeout: .seconds(30)) == true)
        }
    }
}
