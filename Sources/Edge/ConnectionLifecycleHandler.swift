import HTTPTypes
public import NIOCore
import NIOHTTPTypes

/// Per-connection HTTP/1 policy, placed after the HTTP codec: at most `maxRequests` requests
/// per connection, at most `maxLifetime` per connection, and no keep-alive while the server is
/// near its connection cap. When a limit applies, the response carries `Connection: close` and
/// the connection is closed once that response is written.
public final class ConnectionLifecycleHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let maxRequests: Int
    private let maxLifetime: TimeAmount?
    private let guardian: ConnectionGuard?
    /// Request heads read and responses finished: a pipelining client can be ahead of us.
    private var requests = 0
    private var responsesStarted = 0
    private var responsesFinished = 0
    private var responding: Bool { responsesFinished < requests }
    private var closeAfterResponse = false
    private var lifetimeTimer: Scheduled<Void>?

    public init(maxRequests: Int, maxLifetime: TimeAmount?, guard guardian: ConnectionGuard?) {
        self.maxRequests = maxRequests
        self.maxLifetime = maxLifetime
        self.guardian = guardian
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard let maxLifetime else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        lifetimeTimer = context.eventLoop.scheduleTask(in: maxLifetime) {
            let (handler, context) = loopBound.value
            // Idle: close now; busy: close after the current response.
            if handler.responding {
                handler.closeAfterResponse = true
            } else {
                context.close(promise: nil)
            }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        lifetimeTimer?.cancel()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head:
            requests += 1
        case .body, .end:
            break
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            responsesStarted += 1
            if responsesStarted >= maxRequests || guardian?.isNearCapacity == true || closeAfterResponse
                || head.headerFields[.connection]?.lowercased() == "close" {
                closeAfterResponse = true
                head.headerFields[.connection] = "close"
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.body(body)), promise: promise)
        case .end(let trailers):
            responsesFinished += 1
            if closeAfterResponse {
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.cascade(to: promise)
                context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: written)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
            } else {
                context.write(wrapOutboundOut(.end(trailers)), promise: promise)
            }
        }
    }
}
