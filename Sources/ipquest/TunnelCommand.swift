public import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Tunnel
import NIOCore
import UnixSignals

/// `ipquest tunnel [--config FILE] --bind ADDR:PORT http|https|tcp`: an HTTP CONNECT proxy whose command line and
/// YAML keys follow xnuter/http-tunnel, so its users can switch.
struct TunnelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunnel",
        abstract: "HTTP CONNECT proxy (http-tunnel compatible): http, https (TLS listener) or tcp (fixed destination).",
        subcommands: [HTTPMode.self, HTTPSMode.self, TCPMode.self]
    )

    @Option(
        help: """
            YAML configuration file (http-tunnel keys; unknown keys are errors). Without one: at most 10000 \
            connections, tunnels idle for 60s end, private/loopback/NAT64/6to4 targets refused, every public target allowed.
            """) var config: String?
    @Option(
        help: """
            Listen address, ADDR:PORT (e.g. 127.0.0.1:8080, 127.0.0.1:0). 0.0.0.0 or [::] opens the proxy to the \
            network: add proxy_authorization or allowed_targets, or it relays for anyone.
            """) var bind: String
    @Option(name: .customLong("metrics-bind"), help: "Serve Prometheus metrics at http://ADDR:PORT/metrics.")
    var metricsBind: String?
    @Option(help: "Event-loop threads (default: one per core).") var threads: Int?
    @Flag(
        inversion: .prefixedNo,
        help: "Pin each epoll loop to a CPU (default: pinned when there is one loop per CPU the process may use).")
    var pinThreads: Bool?
    @Option(help: "epoll (http and tcp on Linux; https always runs on nio), nio, or automatic.")
    var engine: TunnelEngine = .automatic
    @Option(name: .customLong("log-level"), help: "trace, debug, info (one line per tunnel), notice, warning, error.")
    var logLevel: String = "info"
    @Option(name: .customLong("log-format"), help: "text (default) or json: one JSON object per line on stderr.")
    var logFormat: LogFormat = .text
    @Option(name: .customLong("drain-seconds"),
            help: "On SIGTERM or SIGINT: stop accepting, let open tunnels end for at most this long, then exit (default 30).")
    var drainSeconds: Int = 30

    struct HTTPMode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "http", abstract: "Plain TCP listener, CONNECT handshake.")
        @ParentCommand var tunnel: TunnelCommand
        func run() async throws {
            try await tunnel.serve(mode: .http)
        }
    }

    struct HTTPSMode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "https", abstract: "TLS-terminating listener (PEM --cert/--key or PKCS#12 --pk/--password), then CONNECT.")
        @ParentCommand var tunnel: TunnelCommand
        @Option(help: "PEM certificate chain file.") var cert: String?
        @Option(help: "PEM private key file.") var key: String?
        @Option(help: "PKCS#12 bundle (the anchor's option).") var pk: String?
        @Option(help: "PKCS#12 password.") var password: String = ""

        func validate() throws {
            if pk == nil && (cert == nil || key == nil) {
                throw ValidationError("https needs --cert and --key (PEM) or --pk (PKCS#12)")
            }
            if pk != nil && (cert != nil || key != nil) {
                throw ValidationError("give either --cert/--key or --pk, not both")
            }
        }

        func run() async throws {
            let mode: TunnelMode
            do {
                if let pk {
                    mode = try .https(pkcs12File: pk, password: password)
                } else {
                    mode = try .https(certificateChainPEMFile: cert!, privateKeyPEMFile: key!)
                }
            } catch {
                FileHandle.standardError.write(Data("ipquest tunnel: cannot load the TLS certificate or key: \(error)\n".utf8))
                throw ExitCode(1)
            }
            try await tunnel.serve(mode: mode)
        }
    }

    struct TCPMode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tcp", abstract: "No handshake: relay every connection to a fixed destination.")
        @ParentCommand var tunnel: TunnelCommand
        @Option(name: [.short, .long], help: "HOST:PORT every connection is relayed to.") var destination: String

        func run() async throws {
            guard let target = TargetAddress(authority: Substring(destination)) else {
                throw ValidationError("--destination must be HOST:PORT, got '\(destination)'")
            }
            try await tunnel.serve(mode: .tcp(destination: target))
        }
    }

    func serve(mode: TunnelMode) async throws {
        guard let listen = TargetAddress(authority: Substring(bind)) ?? zeroPort(bind) else {
            throw ValidationError("--bind must be ADDR:PORT, got '\(bind)'")
        }
        var configuration = TunnelConfiguration()
        if let config {
            guard let data = FileManager.default.contents(atPath: config), let text = String(data: data, encoding: .utf8) else {
                FileHandle.standardError.write(Data("ipquest tunnel: cannot read \(config)\n".utf8))
                throw ExitCode(1)
            }
            do {
                configuration = try TunnelConfiguration(yaml: text)
            } catch {
                FileHandle.standardError.write(Data("ipquest tunnel: \(config): \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        var logger = Logger(label: "ipquest.tunnel") { [logFormat] in logFormat.tunnelHandler(label: $0) }
        logger.logLevel = level

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let server: TunnelServer
        do {
            server = try await TunnelServer.start(
                host: listen.host, port: listen.port, mode: mode, configuration: configuration, eventLoopThreads: threads,
                engine: engine, pinThreads: pinThreads, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("ipquest tunnel: cannot listen on \(bind): \(error)\n".utf8))
            throw ExitCode(1)
        }
        var metricsEndpoint: MetricsEndpoint?
        if let metricsBind {
            guard let address = TargetAddress(authority: Substring(metricsBind)) ?? zeroPort(metricsBind) else {
                throw ValidationError("--metrics-bind must be ADDR:PORT, got '\(metricsBind)'")
            }
            metricsEndpoint = try await MetricsEndpoint.start(
                host: address.host, port: address.port, sharingEventLoopsWith: server
            ) {
                registry.emitToString()
            }
        }
        let port = server.localAddress?.port ?? listen.port
        let scheme: String
        switch mode {
        case .http: scheme = "http"
        case .https: scheme = "https"
        case .tcp: scheme = "tcp"
        }
        var line = "ipquest tunnel listening on \(scheme)://\(listen.host.contains(":") ? "[\(listen.host)]" : listen.host):\(port)"
        if let metricsPort = metricsEndpoint?.localAddress?.port { line += " metrics on port \(metricsPort)" }
        // The line is written once the service group runs, its signal handlers in place: a client that
        // starts on the line (and may fill every descriptor at once) can then always stop the tunnel with
        // SIGTERM. Written before, a test filling the descriptor table raced the group's start, and the
        // tunnel ignored the SIGTERM that followed (AcceptBackoffTests hung in CI).
        let listening = line
        let service = TunnelService(server: server, drainTimeout: .seconds(max(0, drainSeconds)), logger: logger) {
            FileHandle.standardOutput.write(Data((listening + "\n").utf8))
        }
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// `TargetAddress` refuses port 0, which a listener may use to pick a free port.
    private func zeroPort(_ text: String) -> TargetAddress? {
        guard text.hasSuffix(":0"), let any = TargetAddress(authority: Substring(text.dropLast()) + "1") else { return nil }
        return TargetAddress(host: any.host, port: 0)
    }
}

extension TunnelEngine: ExpressibleByArgument {}

/// The tunnel under ServiceLifecycle: on SIGTERM or SIGINT it stops accepting and lets the open
/// tunnels end (`TunnelServer.drain`), at most `drainTimeout`, then returns and the process exits.
struct TunnelService: Service {
    let server: TunnelServer
    let drainTimeout: Duration
    let logger: Logger
    /// Called when the service starts (the group's signal handling is set up by then).
    let started: @Sendable () -> Void

    func run() async throws {
        started()
        try? await gracefulShutdown()
        let open = server.activeConnectionCount
        logger.info("tunnel stopping: no new connections", metadata: ["open_tunnels": "\(open)", "drain_seconds": "\(drainTimeout.components.seconds)"])
        if await server.drain(timeout: drainTimeout) {
            logger.info("tunnel stopped: every tunnel ended")
        } else {
            logger.warning("tunnel stopped: tunnels still open after the drain time were cut", metadata: ["open_tunnels": "\(server.activeConnectionCount)"])
        }
    }
}
