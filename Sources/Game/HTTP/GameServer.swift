public import Edge
public import Hummingbird
import HummingbirdCore
import IPAddress
public import Logging
public import NIOCore

/// Assembles the game's HTTP application from a validated configuration.
public enum GameServer {
    public static func makeApplication(
        configuration: ServeConfiguration,
        engine: GameEngine,
        logger: Logger,
        metricsText: (@Sendable () -> String)? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> Application<RouterResponder<GameRequestContext>> {
        let trusted = PrefixSet(configuration.trustedProxies)
        let limiter = TokenBucketLimiter<NetworkKey>(configuration: .init(
            burst: configuration.rateLimitBurst,
            refillPerSecond: configuration.rateLimitPerSecond,
            capacity: configuration.rateLimitMaxNetworks
        ))
        let routes = GameRoutes(engine: engine, resolver: ClientAddressResolver(trustedProxies: trusted), claimLimiter: limiter, metricsText: metricsText)
        let router = Router(context: GameRequestContext.self)
        routes.register(on: router)
        WebSite(routes: routes).register(on: router)

        let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)))
        let server: HTTPServerBuilder
        if configuration.proxyProtocol {
            let registry = ConnectionAddressRegistry.shared
            server = HTTPServerBuilder { responder in
                ProxyProtocolChannel(HTTP1Channel(responder: responder, configuration: http1), trustedProxies: trusted, registry: registry)
            }
        } else {
            server = .http1(configuration: http1)
        }
        var app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "ipquest", backlog: 1024),
            onServerRunning: onServerRunning,
            logger: logger
        )
        app.addServices(engine)
        return app
    }
}
