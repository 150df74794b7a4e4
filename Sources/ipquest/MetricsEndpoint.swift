import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Tunnel

/// The one `/metrics` listener of both commands (`serve` with `metrics.address`, `tunnel` with
/// `--metrics-bind`): a minimal HTTP/1 listener answering `GET /metrics` with text produced on
/// demand (Prometheus exposition), on an internal address apart from the public one.
final class MetricsEndpoint: Sendable {
    private let channel: any Channel

    var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(
        host: String, port: Int, sharingEventLoopsWith server: TunnelServer,
        render: @escaping @Sendable () -> String
    ) async throws -> MetricsEndpoint {
        try await start(host: host, port: port, group: server.eventLoopGroup, render: render)
    }

    static func start(
        host: String, port: Int, group: any EventLoopGroup,
        render: @escaping @Sendable () -> String
    ) async throws -> MetricsEndpoint {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(render: render))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsEndpoint(channel: channel)
    }

    func close() async throws {
        try await channel.close()
    }
}

/// `serve`'s metrics listener as one of its services: open while the game runs, closed at its
/// graceful shutdown.
struct MetricsEndpointService: Service {
    let host: String
    let port: Int
    let render: @Sendable () -> String

    func run() async throws {
        let endpoint = try await MetricsEndpoint.start(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton, render: render)
        FileHandle.standardOutput.write(Data("ipquest metrics on http://\(host):\(endpoint.localAddress?.port ?? port)/metrics\n".utf8))
        try? await gracefulShutdown()
        try await endpoint.close()
    }
}

private final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> String
    private var path = ""
    private var keepAlive = false

    init(render: @escaping @Sendable () -> String) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            let found = path == "/metrics" || path.hasPrefix("/metrics?")
            let body = found ? render() : "not found: try /metrics\n"
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4" : "text/plain")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            let head = HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            let keepAlive = self.keepAlive
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}
