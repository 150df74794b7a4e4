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

    /// Waits (bounded) until `condition` holds, checking the observable state every 20 ms.
    static func waitFor(_ what: String, within limit: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !condition() {
            guard ContinuousClock.now < deadline else { throw ClientError(description: "timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
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

            let drain = Task { await server.drain(timeout: .seconds(30)) }
            try await Self.waitFor("the listener to close") { !Self.accepting(port) }
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
            try await Self.waitFor("the tunnel to end") { server.activeConnectionCount == 0 }
            #expect(await server.drain(timeout: .seconds(30)) == true)
        }
    }
}
