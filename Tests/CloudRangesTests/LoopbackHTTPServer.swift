import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP/1.1 file server on 127.0.0.1 for refresh tests. Each path serves what the test set
/// last (status, body, ETag, Last-Modified, Content-Type); a request whose `If-None-Match` equals
/// the ETag, or without `If-None-Match` whose `If-Modified-Since` equals the Last-Modified, gets
/// 304. A reply can also never come, or stop after its body without ending. Every request is recorded.
final class LoopbackHTTPServer: @unchecked Sendable {
    struct Reply: Sendable {
        var status: HTTPResponseStatus = .ok
        var body: String = ""
        var etag: String?
        var lastModified: String?
        var contentType = "application/octet-stream"
        var delivery = Delivery.complete
    }

    enum Delivery: Sendable {
        /// Head with Content-Length, body, end.
        case complete
        /// Nothing at all: the connection stays open and silent.
        case never
        /// Head without Content-Length (so chunked), the body, then nothing: the answer never ends.
        case stallAfterBody
    }

    struct Request: Sendable {
        var path: String
        var headers: HTTPHeaders
    }

    private let lock = NSLock()
    private var replies: [String: Reply] = [:]
    private var recorded: [Request] = []
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: (any Channel)?

    init() async throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: self))
                }
            }
        channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
    }

    var port: Int { channel?.localAddress?.port ?? 0 }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func set(_ path: String, _ reply: Reply) {
        lock.withLock { replies[path] = reply }
    }

    var requests: [Request] { lock.withLock { recorded } }

    func shutdown() async throws {
        try await channel?.close()
        try await group.shutdownGracefully()
    }

    fileprivate func respond(to head: HTTPRequestHead) -> (HTTPResponseHead, ByteBuffer?, Delivery) {
        let reply: Reply? = lock.withLock {
            recorded.append(Request(path: head.uri, headers: head.headers))
            return replies[head.uri]
        }
        var headers = HTTPHeaders()
        guard let reply else {
            headers.add(name: "Content-Length", value: "0")
            return (HTTPResponseHead(version: .http1_1, status: .notFound, headers: headers), nil, .complete)
        }
        if let etag = reply.etag { headers.add(name: "ETag", value: etag) }
        if let lastModified = reply.lastModified { headers.add(name: "Last-Modified", value: lastModified) }
        let unchanged: Bool
        if let tag = head.headers.first(name: "If-None-Match") {
            unchanged = tag == reply.etag
        } else {
            unchanged = reply.lastModified != nil && head.headers.first(name: "If-Modified-Since") == reply.lastModified
        }
        if reply.status == .ok, unchanged {
            headers.add(name: "Content-Length", value: "0")
            return (HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers), nil, .complete)
        }
        headers.add(name: "Content-Type", value: reply.contentType)
        if reply.delivery == .complete { headers.add(name: "Content-Length", value: "\(reply.body.utf8.count)") }
        return (HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers), ByteBuffer(string: reply.body), reply.delivery)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: LoopbackHTTPServer
        var head: HTTPRequestHead?

        init(server: LoopbackHTTPServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
            case .body:
                break
            case .end:
                guard let head else { return }
                let (responseHead, body, delivery) = server.respond(to: head)
                self.head = nil
                if delivery == .never { return }
                context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
                if delivery == .stallAfterBody {
                    context.flush()
                    return
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
