import ArgumentParser
import ConfigFile
import Foundation
#if canImport(Glibc)
/// glibc's malloc_trim(3); <malloc.h> is not part of the Glibc module.
@_silgen_name("malloc_trim")
func glibcMallocTrim(_ pad: Int) -> Int32
/// glibc's mallopt(3), for M_MMAP_THRESHOLD.
@_silgen_name("mallopt")
func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
import Dispatch
import Game
import Hummingbird
import Logging
import Metrics
import NIOCore
import OTel
import Prometheus
import Tracing
import ServiceLifecycle
import UnixSignals
import GameRules

/// `ipquest serve`: the game server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the capture-the-IP game server (SQLite by default)."
    )

    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (default 8080; 0 picks a free port).") var port: String?
    @Option(help: "SQLite database file, created on first start (default ./ipquest.sqlite), or a postgres://user:pass@host:port/db?sslmode=…&pool_size=… URL.") var database: String?
    @Option(help: "YAML configuration file; flags override its values.") var config: String?
    @Option(name: .customLong("trusted-proxy"), help: "CIDR of a proxy whose word on the client address is believed, or NAME=URL|PATH of a published list (repeatable).")
    var trustedProxies: [String] = []
    @Flag(name: .customLong("proxy-protocol"), help: "Accept PROXY protocol v1/v2 headers from trusted proxies; the client address comes from them.")
    var proxyProtocol = false
    @Option(name: .customLong("real-ip-header"),
            help: "The one header trusted proxies name the client in: x-forwarded-for (default), forwarded, x-real-ip, cf-connecting-ip, fly-client-ip, true-client-ip. Every other forwarding header is ignored.")
    var realIPHeader: String?
    @Option(help: "full (fsync per commit) or normal (survives process crashes only).") var durability: String?
    @Option(name: .customLong("log-format"), help: "text (default) or json: one JSON object per line on stderr (log.format).")
    var logFormat: LogFormat?
    @Option(name: .customLong("web-root"), help: "Directory of static files (a community's own front end) served before the built-in pages (web.root).")
    var webRoot: String?

    func run() async throws {
        #if canImport(Glibc)
        // Blocks of 256 KB and more are mapped for themselves and unmapped when freed, at a
        // threshold that stays put (glibc raises it to the largest block freed, after which
        // large blocks come from the heap, and the unused tail of a buffer whose capacity NIO
        // rounded up to a power of two sits there in pages other buffers dirtied). The /score
        // groups are such buffers: 85 → 48 bytes a player at a million players (issue 24).
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 256 * 1024)
        #endif
        let settings = try Self.loadConfiguration(file: config) { cfg throws(ConfigFileError) in try applyFlags(&cfg) }
        (LogFormat(rawValue: settings.logFormat) ?? .text).bootstrap()

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        Gauge(label: "ipquest_build_info", dimensions: [("version", IPQuestVersion.number), ("commit", IPQuestVersion.commit)]).record(1)
        let tracing = try Self.bootstrapTracing(settings)
        var logger = Logger(label: "ipquest")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info

        let storage: any ClaimStorage
        do {
            if PostgresSettings.isPostgresURL(settings.database) {
                // Shared by several instances: migrations run under an advisory lock, claims from
                // other instances are followed through the change feed.
                storage = try await PostgresClaimStorage(settings: try PostgresSettings(url: settings.database), logger: logger)
            } else {
                storage = try SQLiteClaimStorage(path: settings.database, durability: settings.durability)
            }
        } catch {
            if let advice = SQLiteBackup.corruptionAdvice(for: error, path: settings.database) {
                FileHandle.standardError.write(Data((advice + "\n").utf8))
                throw ExitCode(1)
            }
            let shown = PostgresSettings.isPostgresURL(settings.database) ? ((try? PostgresSettings(url: settings.database))?.redacted ?? "postgres") : settings.database
            FileHandle.standardError.write(Data("ipquest: cannot open database \(shown): \(error)\n".utf8))
            throw ExitCode(1)
        }
        var engineConfiguration = GameEngine.Configuration()
        engineConfiguration.queueCapacity = settings.queueCapacity
        engineConfiguration.maxBatch = settings.maxBatch
        engineConfiguration.gatherWindow = .milliseconds(settings.gatherMilliseconds)
        if let path = settings.effectiveCheckpointPath {
            engineConfiguration.checkpointPath = path
            engineConfiguration.checkpointInterval = .seconds(settings.checkpointIntervalSeconds)
        }
        let engine: GameEngine
        do {
            engine = try await GameEngine(storage: storage, configuration: engineConfiguration, logger: logger)
        } catch {
            // Loading reads every row: a damaged page may show only now.
            guard let advice = SQLiteBackup.corruptionAdvice(for: error, path: settings.database) else { throw error }
            FileHandle.standardError.write(Data((advice + "\n").utf8))
            throw ExitCode(1)
        }
        #if canImport(Glibc)
        // Loading builds the board from every stored row and drops the rows; give the freed
        // pages back (glibc keeps them otherwise).
        _ = glibcMallocTrim(0)
        #endif
        let intelligence: AddressIntelligence?
        do { intelligence = try AddressIntelligence.make(configuration: settings, logger: logger) } catch {
            FileHandle.standardError.write(Data("ipquest: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
        await intelligence?.loadRangesFromDisk()
        let guards = EdgeGuards(configuration: settings, logger: logger)
        await guards.loadAllowlistSources()
        let reloader = installReloadOnHangup(guards: guards, logger: logger)
        defer { reloader.cancel() }
        // With a metrics address, /metrics is served there only (an internal port).
        // Requests in flight (both budgets, every path) are read when scraped, not counted per request.
        let inFlight = Gauge(label: "ipquest_requests_in_flight")
        let emit: @Sendable () -> String = {
            inFlight.record(guards.requestsInFlight)
            return registry.emitToString()
        }
        let mainMetrics: (@Sendable () -> String)? = settings.metricsAddress == nil ? emit : nil
        var app = try GameServer.makeApplication(
            configuration: settings,
            engine: engine,
            logger: logger,
            guards: guards,
            metricsText: mainMetrics,
            intelligence: intelligence,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.port
                // One line on stdout that scripts and tests wait for.
                FileHandle.standardOutput.write(Data("ipquest listening on http://\(settings.host):\(port)\n".utf8))
            }
        )
        if let tracing { app.addServices(tracing) }
        if let address = settings.metricsAddress { app.addServices(MetricsEndpointService(host: address.host, port: address.port, render: emit)) }
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        logger.info("stopped")
    }

    /// With `tracing.endpoint`, spans go to an OTLP/HTTP collector (swift-otel); metrics stay
    /// with Prometheus and logs with swift-log, so only the tracing backend is made here.
    static func bootstrapTracing(_ settings: ServeConfiguration) throws -> (any Service)? {
        guard let endpoint = settings.tracingEndpoint else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.tracingServiceName
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.sampler = .traceIDRatio(ratio: settings.tracingSampleRatio) ?? .traceIDRatio
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        // A bare collector address gets the OTLP/HTTP traces path; a full URL is used as given.
        let path = URL(string: endpoint)?.path ?? ""
        configuration.traces.otlpExporter.endpoint = path.isEmpty || path == "/"
            ? (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces" : endpoint
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        return service
    }

    /// SIGHUP re-reads the configuration file and applies what can change without a restart:
    /// user-agent and path bans and the upstream allowlist. A bad file is logged and ignored.
    func installReloadOnHangup(guards: EdgeGuards, logger: Logger) -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let file = config
        let flags = self
        source.setEventHandler {
            do {
                var cfg = ServeConfiguration()
                if let file {
                    guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                        throw ConfigFileError(key: "--config", problem: "cannot read \(file)")
                    }
                    try cfg.apply(yaml: text)
                }
                try flags.applyFlags(&cfg)
                try cfg.validate()
                try guards.reload(cfg)
                logger.notice("configuration reloaded", metadata: ["banned_user_agents": "\(cfg.bannedUserAgents.count)", "banned_paths": "\(cfg.bannedPaths.count)"])
            } catch {
                logger.error("configuration reload failed; keeping the previous rules", metadata: ["error": "\(error)"])
            }
        }
        source.resume()
        return source
    }

    func applyFlags(_ cfg: inout ServeConfiguration) throws(ConfigFileError) {
        if let host { try cfg.set("host", host) }
        if let port { try cfg.set("port", port) }
        if let database { try cfg.set("database", database) }
        if let durability { try cfg.set("durability", durability) }
        if !trustedProxies.isEmpty { try cfg.set("trusted_proxies", trustedProxies) }
        if proxyProtocol { cfg.proxyProtocol = true }
        if let realIPHeader { try cfg.set("real_ip_header", realIPHeader) }
        if let logFormat { try cfg.set("log.format", logFormat.rawValue) }
        if let webRoot { try cfg.set("web.root", webRoot) }
    }

    /// Reads the YAML file (if any), then applies the flags, then validates. Any problem is one
    /// line on stderr naming the key, and exit code 2.
    static func loadConfiguration(file: String?, flags: (inout ServeConfiguration) throws(ConfigFileError) -> Void) throws -> ServeConfiguration {
        var cfg = ServeConfiguration()
        do {
            if let file {
                guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                    throw ConfigFileError(key: "--config", problem: "cannot read \(file)")
                }
                try cfg.apply(yaml: text)
            }
            try flags(&cfg)
            try cfg.validate()
        } catch {
            FileHandle.standardError.write(Data("ipquest: \(error)\n".utf8))
            throw ExitCode(2)
        }
        return cfg
    }
}
