import Foundation
import Testing

@testable import Tunnel

#if canImport(Glibc)
import Glibc
#endif

/// `ipquest tunnel` as a child process under a small descriptor limit (`ulimit -n`), with more connections
/// waiting than it may accept: accepting pauses (it does not spin on EMFILE), the failure is logged at a
/// bounded rate, and once connections close new tunnels work again. A child process, because a limit set in
/// the test process would starve the tests running beside it.
#if os(Linux)
@Suite("Accept backoff under a descriptor limit", .serialized, .timeLimit(.minutes(2)))
struct AcceptBackoffTests {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["IPQUEST_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/ipquest").path
    }

    static let descriptorLimit = 64

    /// The tunnel process, its output files and port.
    struct Child {
        let process: Process
        let directory: String
        let port: Int
        var stderrPath: String { directory + "/stderr" }

        var pid: Int32 { process.processIdentifier }

        /// Descriptors the child has open.
        func openDescriptors() -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
        }

        /// User plus system CPU time of the child (all threads), in seconds.
        func cpuSeconds() throws -> Double {
            let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
            let fields = stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ")
            let ticks = Double(Int(fields[11])! + Int(fields[12])!)
            return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
        }

        func acceptFailureLines() -> Int {
            let text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").filter { $0.contains("accept") }.count
        }

        /// SIGTERM, and the tunnel must exit within its drain time (30 s) and a margin; if it does not, the
        /// test fails and the child is killed, so a stuck child never holds the test run.
        func stop() {
            if process.isRunning { process.terminate() }
            let exited = AcceptBackoffTests.wait(seconds: 45) { !process.isRunning }
            if !exited {
                Issue.record("the tunnel did not exit within 45 s of SIGTERM: \((try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")")
                kill(pid, SIGKILL)
            }
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Starts the binary under `ulimit -n descriptorLimit`, logging warnings and errors only, and waits (bounded)
    /// for its "listening on" line.
    static func launch(engine: TunnelEngine) throws -> Child {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("accept-backoff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Loopback targets allowed; accepted connections that send nothing stay open through the measurement.
        let configuration = "client_connection:\n  initiation_timeout: 2m\ntarget_connection:\n  denied_networks: []\n"
        try configuration.write(toFile: directory + "/tunnel.yaml", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: directory + "/stdout", contents: nil)
        FileManager.default.createFile(atPath: directory + "/stderr", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // exec: the shell's process becomes the tunnel, so its pid is the tunnel's.
        process.arguments = [
            "-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", binary, "tunnel",
            "--config", directory + "/tunnel.yaml", "--bind", "127.0.0.1:0", "--threads", "1",
            "--engine", engine.rawValue, "--log-level", "warning", "http",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: directory + "/stdout")
        process.standardError = FileHandle(forWritingAtPath: directory + "/stderr")
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, process.isRunning {
            let text = (try? String(contentsOfFile: directory + "/stdout", encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on") }),
                let port = Int(line.split(separator: ":").last ?? "")
            {
                return Child(process: process, directory: directory, port: port)
            }
            usleep(20_000)
        }
        let stderr = (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? ""
        if process.isRunning { process.terminate() }
        throw ClientError(description: "the tunnel did not start: \(stderr)")
    }

    /// Polls `condition` until it holds or `seconds` pass.
    static func wait(seconds: Double, for condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the ipquest binary (swift build)"),
        arguments: TunnelEngine.tested)
    func acceptFailuresPauseAcceptingInsteadOfSpinningAndTunnelsWorkAgainOnceConnectionsClose(engine: TunnelEngine)
        async throws
    {
        let echo = try await LoopbackServer.echo()
        defer { Task { await echo.close() } }
        let echoPort = echo.port
        let child = try Self.launch(engine: engine)
        defer { child.stop() }
        try await onThread {
            // Enough connections to fill the child's descriptor table, and 16 more left waiting in its queue.
            let count = Self.descriptorLimit - child.openDescriptors() + 16
            var clients: [BlockingClient] = []
            for _ in 0..<count { clients.append(try BlockingClient(port: child.port)) }
            let full = Self.wait(seconds: 10) { child.openDescriptors() >= Self.descriptorLimit }
            #expect(full, "the child's descriptor table never filled: \(child.openDescriptors()) open")

            // Connections wait and accept fails; over two seconds the child should all but sleep.
            let cpuBefore = try child.cpuSeconds()
            let linesBefore = child.acceptFailureLines()
            let window = 2.0
            usleep(UInt32(window * 1_000_000))  // the measurement window itself, not a wait for a state
            let cpu = try child.cpuSeconds() - cpuBefore
            let lines = child.acceptFailureLines() - linesBefore
            #expect(cpu < 0.3, "the tunnel used \(cpu) s of CPU in \(window) s with accepts failing (engine \(engine))")
            #expect(lines <= 1, "\(lines) accept-failure lines in \(window) s (engine \(engine))")
            #expect(child.acceptFailureLines() >= 1, "the accept failure was never logged")
            #expect(child.acceptFailureLines() <= 3)

            // Freed descriptors: the waiting connections are taken (and end), and a new tunnel works.
            clients.removeAll()
            let client = try BlockingClient(port: child.port, timeoutSeconds: 15)
            #expect(try client.connect(to: "127.0.0.1:\(echoPort)").status == 200)
            try client.send("ping")
            #expect(try client.receive(exactly: 4) == Array("ping".utf8))
        }
        #expect(child.process.isRunning, "the tunnel exited: \((try? String(contentsOfFile: child.stderrPath, encoding: .utf8)) ?? "")")
    }
}
#endif
