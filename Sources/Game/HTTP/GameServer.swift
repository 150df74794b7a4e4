public import Edge
public import HTTPServing
public import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import NIOSSL
import ServiceLifecycle
import Synchronization
import IPAddress
public import CloudRanges
public import Logging
public import NIOCore
import GameRules

/// The edge guards of one server, kept so a reload (SIGHUP) can swap rules and allowlists.
public struct EdgeGuards: Sendable {
    public let connections: ConnectionGuard
    public let rules: RuleBook
    public let limits: RequestLimits
    /// Published upstream ranges (a CDN's list, a file) that join the allowlist, refreshed by
    /// `AllowlistRefresher`; nil when the allowlist is only CIDRs.
    public let allowlistSources: RangeSet?
    private let staticAllowlist: Box
    /// The proxies whose word on the client address is believed: CIDRs plus published lists
    /// (`trustedProxySources`, refreshed like the allowlist's).
    public let trustedProxies: TrustedProxies
    public let trustedProxySources: RangeSet?
    private let staticTrusted: Box

    final class Box: Sendable {
        let value: Mutex<[IPPrefix]?>
        init(_ value: [IPPrefix]?) { self.value = Mutex(value) }
    }

    public init(configuration c: ServeConfiguration, logger: Logger = Logger(label: "ipquest.allowlist")) {
        staticAllowlist = Box(c.upstreamAllowlist)
        allowlistSources = c.upstreamAllowlistSources.isEmpty ? nil : RangeSet(
            sources: c.upstreamAllowlistSources, refreshInterval: .seconds(c.upstreamAllowlistRefreshSeconds),
            requestTimeout: .seconds(15), logger: logger)
        staticTrusted = Box(c.trustedProxies)
        trustedProxies = TrustedProxies(c.trustedProxies)
        trustedProxySources = c.trustedProxySources.isEmpty ? nil : RangeSet(
            sources: c.trustedProxySources, refreshInterval: .seconds(c.trustedProxiesRefreshSeconds),
            requestTimeout: .seconds(15), logger: logger)
        let bans = BanList<NetworkKey>(capacity: 65_536)
        connections = ConnectionGuard(
            maxConnections: c.maxConnections,
            maxConnectionsPerNetwork: c.maxConnectionsPerNetwork,
            allowlist: c.upstreamAllowlist.map { PrefixSet($0) },
            bans: bans,
            trustedProxies: trustedProxies
        )
        // Validated with the configuration, so compiling cannot fail here.
        rules = try! RuleBook(c.requestRules)
        limits = .init(
            reads: InFlightLimiter(limit: c.maxInFlight),
            claims: InFlightLimiter(limit: c.maxInFlightClaims),
            network: TokenBucketLimiter(configuration: .init(burst: c.requestsBurst, refillPerSecond: c.requestsPerSecond, capacity: c.rateLimitMaxNetworks)),
            strikes: c.strikesBeforeBan > 0
                ? TokenBucketLimiter(configuration: .init(burst: c.strikesBeforeBan, refillPerSecond: Double(c.strikesBeforeBan) / 60, capacity: 65_536))
                : nil,
            bans: bans,
            banSeconds: Double(c.banSeconds)
        )
    }

    /// Requests holding an in-flight budget now (reads and claims, on every path).
    public var requestsInFlight: Int { limits.reads.inFlight + limits.claims.inFlight }

    /// Applies the reloadable parts of a new configuration: bans, and the CIDRs of the upstream
    /// allowlist and of the trusted proxies (their published lists are fixed at start and
    /// refresh on their own).
    public func reload(_ c: ServeConfiguration) throws {
        try rules.replace(c.requestRules)
        staticAllowlist.value.withLock { $0 = c.upstreamAllowlist }
        applyAllowlist()
        staticTrusted.value.withLock { $0 = c.trustedProxies }
        applyTrustedProxies()
    }

    /// Publishes the trusted proxies: the configured CIDRs plus every range their lists hold now.
    public func applyTrustedProxies() {
        var prefixes = staticTrusted.value.withLock { $0 } ?? []
        if let trustedProxySources { prefixes += trustedProxySources.table.allRanges.map(\.prefix) }
        trustedProxies.replace(prefixes)
    }

    /// Publishes the allowlist: the configured CIDRs plus every range the sources hold now.
    public func applyAllowlist() {
        guard var prefixes = staticAllowlist.value.withLock({ $0 }) else {
            connections.replaceAllowlist(nil)
            return
        }
        if let allowlistSources { prefixes += allowlistSources.table.allRanges.map(\.prefix) }
        connections.replaceAllowlist(PrefixSet(prefixes))
    }

    /// Loads the sources once (cache, files, network) and publishes the result; call before
    /// accepting connections so a CDN's ranges are allowed from the first one.
    public func loadAllowlistSources() async {
        if let trustedProxySources {
            await trustedProxySources.loadCache()
            await trustedProxySources.refresh()
            applyTrustedProxies()
        }
        guard let allowlistSources else { return }
        await allowlistSources.loadCache()
        await allowlistSources.refresh()
        applyAllowlist()
    }
}

extension ServeConfiguration {
    public var requestRules: RequestRules {
        RequestRules(bannedUserAgents: Set(bannedUserAgents), bannedUserAgentPatterns: bannedUserAgentPatterns, bannedPaths: bannedPaths)
    }
}

/// Assembles the game's HTTP application from a validated configuration.
public enum GameServer {
    public static func makeApplication(
        configuration: ServeConfiguration,
        engine: GameEngine,
        logger: Logger,
        guards: EdgeGuards? = nil,
        metricsText: (@Sendable () -> String)? = nil,
        intelligence: AddressIntelligence? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> Application<RouterResponder<GameRequestContext>> {
        let guards = guards ?? EdgeGuards(configuration: configuration)
        let serverName = "ipquest"
        let trusted = guards.trustedProxies
        let limiter = TokenBucketLimiter<NetworkKey>(configuration: .init(
            burst: configuration.rateLimitBurst,
            refillPerSecond: configuration.rateLimitPerSecond,
            capacity: configuration.rateLimitMaxNetworks
        ))
        let routes = GameRoutes(
            engine: engine, resolver: ClientAddressResolver(trustedProxies: trusted, source: configuration.realIPSource), claimLimiter: limiter, metricsText: metricsText,
            intelligence: intelligence, dataCenterPolicy: configuration.dataCenterPolicy)
        let admission = RequestAdmission(
            limits: guards.limits, rules: guards.rules,
            dataCenters: intelligence.flatMap { intelligence in
                intelligence.cloud == nil ? nil : .init(policy: configuration.dataCenterPolicy, classify: { intelligence.dataCenter(of: $0) })
            })
        let metrics = RequestMetrics()
        // HEAD is answered by every GET route (ipv4.games claims with HEAD too).
        let router = Router(context: GameRequestContext.self, options: .autoGenerateHeadEndpoints)
        Statusz.markStart()
        // Outermost: a method outside the standard set never reaches a metric label.
        router.add(middleware: KnownMethodMiddleware())
        // A span per request when spans go somewhere (`tracing.endpoint`); otherwise not even the no-op.
        if configuration.tracingEndpoint != nil { router.add(middleware: TracingMiddleware()) }
        router.add(middleware: RequestMetricsMiddleware(metrics))
        router.add(middleware: AdmissionMiddleware(admission, clientAddress: { request, context in try? routes.clientAddress(request, context) }))
        router.add(middleware: ErrorFormattingMiddleware())
        // After admission, so a cached page is never served to a refused client.
        if configuration.cacheTTLSeconds > 0 {
            router.add(middleware: ResponseCacheMiddleware(configuration: .init(
                ttl: .seconds(configuration.cacheTTLSeconds), tti: .seconds(max(30, configuration.cacheTTLSeconds)),
                maxBytes: configuration.cacheMaxBytes, paths: RouteTable.cachedPaths)))
        }
        let pages = WebSite(routes: routes, root: configuration.webRoot.map(StaticFiles.init(root:))).handlers()
        RouteTable.register(routes.handlers().merging(pages) { api, _ in api }, on: router)

        let connections = guards.connections
        let budgets = ConnectionLifecycleHandler.Admission(reads: guards.limits.reads, claims: guards.limits.claims,
                                                           isClaim: { RouteTable.isClaim(RequestPath.normalized($0)) })
        let maxRequests = configuration.maxRequestsPerConnection
        let lifetime = TimeAmount.seconds(Int64(configuration.maxConnectionLifetimeSeconds))
        // Hot routes are answered on the event loop (FastRoutes), unless spans are wanted
        // per request (only the router makes them) or the configuration turns it off.
        let fastRoutes = configuration.fastPath && configuration.tracingEndpoint == nil
            ? FastRoutes(routes: routes, admission: admission, metrics: metrics, logger: logger) : nil
        let mailboxes = EventLoopMailboxes()
        let maxBodyBytes = configuration.maxBodyBytes
        let idleTimeout = TimeAmount.seconds(Int64(configuration.idleTimeoutSeconds))
        let firstHeadTimeout = TimeAmount.seconds(Int64(min(configuration.firstHeadTimeoutSeconds, configuration.idleTimeoutSeconds)))
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: {
                let lifecycle = ConnectionLifecycleHandler(maxRequests: maxRequests, maxLifetime: lifetime, guard: connections,
                                                           maxBodyBytes: maxBodyBytes, admission: budgets, idleTimeout: idleTimeout,
                                                           firstHeadTimeout: firstHeadTimeout)
                guard let fastRoutes else { return [lifecycle] }
                return [lifecycle, FastResponseHandler(serverName: serverName, mailboxes: mailboxes, client: { GameRequestContext.client(of: $0) },
                                                       responder: { request, client in fastRoutes.reply(request, peer: client) })]
            }(),
            // The idle timeout (also the head deadline) is ConnectionLifecycleHandler's: it sees
            // the requests the fast paths answer, which Hummingbird's own handler never does.
            idleTimeout: nil,
            // Claims and reads carry small heads: 16 KiB and 100 fields are plenty (over: 431).
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: configuration.maxHeaderBytes, maxHeaderListSize: 2 * configuration.maxHeaderBytes,
                maxHeaderFieldCount: configuration.maxHeaderFields)
        )
        var h2 = HTTP2ChannelConfiguration(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)), streamConfiguration: http1)
        h2.maxAgeTimeout = .seconds(Int64(configuration.maxConnectionLifetimeSeconds)) // (the initializer drops it)
        let http2 = h2
        var tlsReloader: TLSReloader?
        let server: HTTPServerBuilder
        if let certificate = configuration.tlsCertificate, let key = configuration.tlsKey {
            // HTTPS: ALPN picks HTTP/2 or HTTP/1.1; renewed certificate files are picked up by
            // new connections (TLSReloader), open ones keep theirs.
            let reloader = TLSReloader(files: CertificateFiles(certificatePath: certificate, keyPath: key), http2: http2,
                                       checkEvery: .seconds(configuration.tlsCheckSeconds), logger: logger)
            let initial = try reloader.files.load()
            tlsReloader = reloader
            server = HTTPServerBuilder { responder in
                GuardedChannel(ReloadableChannel(slot: try reloader.install(initial, responder: responder)), guard: connections)
            }
        } else if configuration.http2 {
            // Cleartext HTTP/2 with prior knowledge (h2c), for running behind a proxy that speaks it.
            server = HTTPServerBuilder { responder in
                GuardedChannel(HTTP2Channel(responder: responder, configuration: http2), guard: connections)
            }
        } else {
            // Cleartext HTTP/1.1.
            if configuration.proxyProtocol {
                let registry = ConnectionAddressRegistry.shared
                server = HTTPServerBuilder { responder in
                    GuardedChannel(ProxyProtocolChannel(HTTP1Channel(responder: responder, configuration: http1), trustedProxies: trusted, registry: registry),
                                   guard: connections)
                }
            } else {
                server = HTTPServerBuilder { responder in
                    GuardedChannel(HTTP1Channel(responder: responder, configuration: http1), guard: connections)
                }
            }
        }
        var app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName, backlog: 1024),
            onServerRunning: onServerRunning,
            logger: logger
        )
        app.addServices(engine)
        if guards.allowlistSources != nil || guards.trustedProxySources != nil { app.addServices(AllowlistRefresher(guards: guards)) }
        if let tlsReloader { app.addServices(tlsReloader) }
        if let intelligence { app.addServices(intelligence) }
        return app
    }
}

/// Swaps in an HTTPS channel built from renewed certificate files, checked every `checkEvery`.
/// A pair that fails to load is logged and the previous certificate stays in service.
final class TLSReloader: Service, Sendable {
    let files: CertificateFiles
    let http2: HTTP2ChannelConfiguration
    let checkEvery: Duration
    let logger: Logger
    private let state = Mutex<(slot: ReloadableChannel<HTTP2UpgradeChannel>.Slot, responder: HTTPChannelHandler.Responder)?>(nil)

    init(files: CertificateFiles, http2: HTTP2ChannelConfiguration, checkEvery: Duration, logger: Logger) {
        self.files = files
        self.http2 = http2
        self.checkEvery = checkEvery
        self.logger = logger
    }

    /// Called once by the server builder with the application's responder.
    func install(_ tls: TLSConfiguration, responder: @escaping HTTPChannelHandler.Responder) throws -> ReloadableChannel<HTTP2UpgradeChannel>.Slot {
        let slot = ReloadableChannel<HTTP2UpgradeChannel>.Slot(try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: http2, responder: responder))
        state.withLock { $0 = (slot, responder) }
        return slot
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: self.checkEvery) } catch { return }
                self.check()
            }
        }
    }

    func check() {
        guard let (slot, responder) = state.withLock({ $0 }) else { return }
        do {
            guard let tls = try files.reloadIfChanged() else { return }
            slot.replace(try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: http2, responder: responder))
            logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(files.certificatePath)"])
        } catch {
            logger.error("TLS certificate files changed but do not load; keeping the previous ones",
                         metadata: ["certificate": "\(files.certificatePath)", "error": "\(error)"])
        }
    }
}

/// Re-reads the published lists of the allowlist and of the trusted proxies every refresh
/// interval and swaps the merged sets in. A failing source keeps its last good ranges
/// (RangeSet), so peers are never cut off, nor proxies distrusted, by an unreachable list.
struct AllowlistRefresher: Service {
    let guards: EdgeGuards

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            if let sources = guards.allowlistSources {
                group.addTask { await Self.refresh(sources) { guards.applyAllowlist() } }
            }
            if let sources = guards.trustedProxySources {
                group.addTask { await Self.refresh(sources) { guards.applyTrustedProxies() } }
            }
        }
    }

    private static func refresh(_ sources: RangeSet, apply: @escaping @Sendable () -> Void) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: sources.refreshInterval) } catch { return }
                await sources.refresh()
                apply()
            }
        }
    }
}
