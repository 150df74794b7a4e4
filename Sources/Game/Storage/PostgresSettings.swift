import Foundation
import NIOSSL
import PostgresNIO
import GameRules

/// Connection settings parsed from a `postgres://user:password@host:port/database?options` URL.
///
/// Options (query parameters): `sslmode=disable|prefer|require|verify-full` (default prefer),
/// `pool_size` (connections per instance, default 8), `statement_timeout_ms` (server-side limit
/// per statement, default 5000), `timeout_ms` (how long a claim batch may wait for the database
/// before its claims answer 503, default 2000), `application_name`.
public struct PostgresSettings: Sendable, Equatable {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var host = "127.0.0.1"
    public var port = 5432
    public var username = "postgres"
    public var password: String?
    public var database = "postgres"
    public var sslMode = SSLMode.prefer
    public var poolSize = 8
    public var statementTimeoutMilliseconds = 5_000
    public var timeoutMilliseconds = 2_000
    public var applicationName = "ipquest"

    public init() {}

    /// True when `text` names a PostgreSQL database rather than an SQLite file.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public var problem: String
        public var description: String { problem }
    }

    public init(url text: String) throws(InvalidURL) {
        guard Self.isPostgresURL(text), let components = URLComponents(string: text) else {
            throw InvalidURL(problem: "not a postgres:// URL")
        }
        if let h = components.host, !h.isEmpty { host = h }
        if let p = components.port {
            guard (1...65_535).contains(p) else { throw InvalidURL(problem: "port \(p) is outside 1…65535") }
            port = p
        }
        if let u = components.user, !u.isEmpty { username = u }
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? username : path
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            func int(_ range: ClosedRange<Int>) throws(InvalidURL) -> Int {
                guard let n = Int(value), range.contains(n) else {
                    throw InvalidURL(problem: "\(item.name)=\(value) is not an integer in \(range.lowerBound)…\(range.upperBound)")
                }
                return n
            }
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw InvalidURL(problem: "sslmode=\(value) is not one of disable, prefer, require, verify-full")
                }
                sslMode = mode
            case "pool_size": poolSize = try int(1...1_000)
            case "statement_timeout_ms": statementTimeoutMilliseconds = try int(0...3_600_000)
            case "timeout_ms": timeoutMilliseconds = try int(10...600_000)
            case "application_name": applicationName = value
            default: throw InvalidURL(problem: "unknown option \(item.name)")
            }
        }
    }

    /// The same URL without the password, for logs.
    public var redacted: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    func tlsConfiguration() -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        // libpq's "require" encrypts without checking the certificate; verify-full checks both.
        if sslMode != .verifyFull { tls.certificateVerification = .none }
        return tls
    }

    var startupParameters: [(String, String)] {
        [("application_name", applicationName), ("statement_timeout", String(statementTimeoutMilliseconds))]
    }

    func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(tlsConfiguration())
        case .require, .verifyFull: tls = .require(tlsConfiguration())
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = poolSize
        configuration.options.connectTimeout = .milliseconds(Int64(max(timeoutMilliseconds, 500)))
        configuration.options.additionalStartupParameters = startupParameters
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(10))
        return configuration
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
        case .require, .verifyFull: tls = .require(try NIOSSLContext(configuration: tlsConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(Int64(max(timeoutMilliseconds, 500)))
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }
}
