import Foundation
import Logging
import PostgresNIO
import Testing
@testable import Game
@testable import GameRules

/// The throw-away cluster started by scripts/with-postgres.sh (`make test`), and helpers to get a
/// fresh database in it or a private cluster of one's own.
enum PostgresTestCluster {
    static var url: String? { ProcessInfo.processInfo.environment["IPQUEST_POSTGRES_URL"] }
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    /// Run the PostgreSQL tests when a cluster is there, and always in CI, where a missing
    /// cluster must fail the run rather than skip it silently.
    static var enabled: Bool { url != nil || inCI }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "IPQUEST_POSTGRES_URL is not set: run the tests through scripts/with-postgres.sh (make test)" }
    }

    static var logger: Logger {
        var logger = Logger(label: "pg-test")
        logger.logLevel = .error
        return logger
    }

    /// A new empty database in the shared cluster.
    static func freshDatabase() async throws -> PostgresSettings {
        guard let url else { throw Missing() }
        let admin = try PostgresSettings(url: url)
        let name = "ipq_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let connection = try await PostgresConnection.connect(configuration: try admin.connectionConfiguration(), id: 99, logger: logger)
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        try await connection.close()
        var settings = admin
        settings.database = String(name)
        return settings
    }

    static func url(of settings: PostgresSettings) -> String {
        "postgres://\(settings.username)@\(settings.host):\(settings.port)/\(settings.database)?sslmode=disable"
    }

    static func query(_ settings: PostgresSettings, _ sql: String) async throws -> [PostgresRow] {
        let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 98, logger: logger)
        defer { Task { try? await connection.close() } }
        return try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
    }
}

/// A private cluster (initdb + pg_ctl on a free loopback port) that a test may stop and start.
final class PrivatePostgresCluster: @unchecked Sendable {
    let directory: String
    let port: Int
    let bin: String
    let asPostgres: Bool

    init() throws {
        guard let bin = ProcessInfo.processInfo.environment["IPQUEST_PG_BIN"] else { throw PostgresTestCluster.Missing() }
        self.bin = bin
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-pgpriv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        asPostgres = getuid() == 0
        port = Self.freePort()
        if asPostgres { try Self.run("/bin/chown", ["postgres", directory]) }
        try pg("initdb", ["-D", directory + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        try start()
    }

    var settings: PostgresSettings {
        var s = PostgresSettings()
        s.host = "127.0.0.1"
        s.port = port
        s.database = "postgres"
        s.sslMode = .disable
        s.timeoutMilliseconds = 1_000
        return s
    }

    func start() throws {
        try pg("pg_ctl", ["-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
                          "-o", "-h 127.0.0.1 -p \(port) -k \(directory)", "start"])
    }

    func stop(mode: String = "fast") throws {
        try pg("pg_ctl", ["-D", directory + "/data", "-m", mode, "-w", "stop"])
    }

    func destroy() {
        try? stop(mode: "immediate")
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func pg(_ tool: String, _ arguments: [String]) throws {
        if asPostgres {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", bin + "/" + tool] + arguments)
        } else {
            try Self.run(bin + "/" + tool, arguments)
        }
    }

    struct ToolFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// posix_spawn + waitpid (Foundation's Process may not reap children while every
    /// cooperative thread is busy); output goes to a file, never a pipe a server could inherit.
    static func run(_ executable: String, _ arguments: [String]) throws {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-pgtool-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let argv = ["/bin/sh", "-c", "exec \"$0\" \"$@\" </dev/null >\"$LOGFILE\" 2>&1", executable] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var env = ProcessInfo.processInfo.environment
        env["LOGFILE"] = logPath
        var cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", nil, nil, &cArgs, &cEnv)
        guard rc == 0 else { throw ToolFailed(description: "posix_spawn failed: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        guard status == 0 else {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw ToolFailed(description: "\(executable) \(arguments.joined(separator: " ")) (status \(status)): \(text)")
        }
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
