import HTTPTypes
import Metrics
public import NIOCore
import NIOHTTP1
public import NIOHTTPTypes

/// Per-connection HTTP/1 policy, placed after the HTTP codec: at most `maxRequests` requests
/// per connection, at most `maxLifetime` per connection, and no keep-alive while the server is
/// near its connection cap. When a limit applies, the response carries `Connection: close` and
/// the connection is closed once that response is written.
///
/// It also answers what the application never sees: a request head over the decoder's size or
/// field-count limits gets `431 Request Header Fields Too Large`, a declared body over
/// `maxBodyBytes` gets `413 Content Too Large` (chunked bodies that grow past it close the
/// connection), each with a short text body and `Connection: close`.
///
/// Load shedding happens here too, as each request head is read on the event loop: a request
/// beyond its budget (`Admission`: reads and claims counted separately, across all
/// connections, from head read to response end) is answered `503` with `Retry-After` at once.
/// Counting at the channel rather than in a middleware matters: under CPU-bound overload the
/// queue forms before any middleware runs, in the executor that schedules request tasks.
///
/// Its clock is the event loop's (`EventLoop.now`), so a test drives every timer with an
/// `EmbeddedEventLoop`. It owns the connection's idle timeout too (`idleTimeout`): closed when nothing was read and
/// no answer finished for that long, unless a request is being answered — so a client that
/// sends a head slower than that is cut off (slowloris). It is kept here rather than in
/// Hummingbird because requests answered by the fast paths never reach Hummingbird's handler.
///
/// On an HTTP/2 stream (a channel whose parent is a connection, not the listening socket) only
/// the size limits apply: request counts and lifetime belong to the connection there (HTTP/2's
/// own max-age), and `Connection` headers do not exist in HTTP/2.
public final class ConnectionLifecycleHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Global in-flight budgets, shared by every connection and stream.
    public struct Admission: Sendable {
        public var reads: InFlightLimiter
        public var claims: InFlightLimiter
        public var isClaim: @Sendable (String) -> Bool
        public init(reads: InFlightLimiter, claims: InFlightLimiter, isClaim: @escaping @Sendable (String) -> Bool) {
            self.reads = reads
            self.claims = claims
            self.isClaim = isClaim
        }
    }

    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let maxRequests: Int
    private let maxLifetime: TimeAmount?
    private let idleTimeout: TimeAmount?
    /// A new connection's first request head must be complete within this (shorter than the
    /// idle timeout: a client that connects and dawdles holds a slot for nothing).
    private let firstHeadTimeout: TimeAmount?
    private var idleTimer: Scheduled<Void>?
    private var firstHeadTimer: Scheduled<Void>?
    /// Whether a request head was read and its end not yet.
    private var readingRequest = false
    /// Shared with `HTTP1FastPathHandler` when it answers before the HTTP decoder.
    private var ledger = ConnectionLedger()
    private let guardian: ConnectionGuard?
    /// Request heads read and responses finished: a pipelining client can be ahead of us.
    private var requests = 0
    private var responsesFinished = 0
    private var responding: Bool { responsesFinished < requests }
    private var lifetimeTimer: Scheduled<Void>?
    private let maxBodyBytes: Int
    /// Body bytes of the current request, and whether its parts are being dropped.
    private var bodyBytes = 0
    private var dropping = false
    private var isStream = false
    private let admission: Admission?
    /// The budget each forwarded, unanswered request holds, oldest first.
    private var held: [InFlightLimiter] = []
    private let shed = Counter(label: "ipquest_requests_shed_total")
    private let rejected431 = Counter(label: "ipquest_requests_rejected_total", dimensions: [("reason", "header_too_large")])
    private let rejected413 = Counter(label: "ipquest_requests_rejected_total", dimensions: [("reason", "body_too_large")])
    private let closedForFirstHead = Counter(label: "ipquest_connections_closed_total", dimensions: [("reason", "first_head_timeout")])

    public init(maxRequests: Int, maxLifetime: TimeAmount?, guard guardian: ConnectionGuard?, maxBodyBytes: Int = 64 * 1024,
                admission: Admission? = nil, idleTimeout: TimeAmount? = nil, firstHeadTimeout: TimeAmount? = nil) {
        self.admission = admission
        self.idleTimeout = idleTimeout
        self.firstHeadTimeout = firstHeadTimeout
        self.maxRequests = maxRequests
        self.maxLifetime = maxLifetime
        self.guardian = guardian
        self.maxBodyBytes = maxBodyBytes
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        isStream = context.channel.parent?.parent != nil
        if let early = try? context.pipeline.syncOperations.handler(type: HTTP1FastPathHandler.self) { ledger = early.ledger }
        ledger.lastActivity = context.eventLoop.now
        guard !isStream else { return }
        if let idleTimeout { scheduleIdleCheck(context, at: context.eventLoop.now + idleTimeout) }
        if let firstHeadTimeout {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            firstHeadTimer = context.eventLoop.scheduleTask(in: firstHeadTimeout) {
                let (handler, context) = loopBound.value
                // No head decoded and none answered before the decoder: the client never asked.
                if handler.requests == 0, !handler.readingRequest, handler.ledger.responsesStarted == 0 {
                    handler.closedForFirstHead.increment()
                    context.close(promise: nil)
                }
            }
        }
        guard let maxLifetime else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        lifetimeTimer = context.eventLoop.scheduleTask(in: maxLifetime) {
            let (handler, context) = loopBound.value
            // Idle: close now; busy: close after the current response.
            if handler.responding {
                handler.ledger.closeAfterResponse = true
            } else {
                context.close(promise: nil)
            }
        }
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            guard let idleTimeout = handler.idleTimeout else { return }
            // Answering a request that was read in full: not idle, look again later.
            if !handler.readingRequest, handler.responding {
                handler.scheduleIdleCheck(context, at: context.eventLoop.now + idleTimeout)
                return
            }
            let due = handler.ledger.lastActivity + idleTimeout
            if due <= context.eventLoop.now {
                context.close(promise: nil)
            } else {
                handler.scheduleIdleCheck(context, at: due)
            }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        lifetimeTimer?.cancel()
        idleTimer?.cancel()
        firstHeadTimer?.cancel()
        releaseHeld()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        releaseHeld() // requests that will never be answered give their slots back
        context.fireChannelInactive()
    }

    private func releaseHeld() {
        for pool in held { pool.release() }
        held.removeAll()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        ledger.lastActivity = context.eventLoop.now
        switch part {
        case .head(let head):
            readingRequest = true
            bodyBytes = 0
            if let length = head.headerFields[.contentLength].flatMap(Int.init), length > maxBodyBytes {
                dropping = true
                rejected413.increment()
                if responding {
                    ledger.closeAfterResponse = true // answer what came before, then hang up
                } else {
                    reject(context, status: .init(code: 413, reasonPhrase: "Content Too Large"),
                           message: "request body too large: \(length) bytes, at most \(maxBodyBytes)")
                }
                return
            }
            if let admission {
                let pool = admission.isClaim(head.path ?? "/") ? admission.claims : admission.reads
                guard pool.tryAcquire() else {
                    dropping = true
                    shed.increment()
                    if responding {
                        ledger.closeAfterResponse = true
                    } else {
                        // An ordinary answer: the connection stays open for the retry, unless
                        // the client asked to close it.
                        let wantsClose = head.headerFields[.connection]?.lowercased().contains("close") ?? false
                        reject(context, status: .serviceUnavailable, message: "server busy; retry in 1 s", retryAfter: 1, close: wantsClose)
                    }
                    return
                }
                held.append(pool)
            }
            requests += 1
        case .body(let buffer):
            if dropping { return }
            bodyBytes += buffer.readableBytes
            if bodyBytes > maxBodyBytes {
                dropping = true
                rejected413.increment()
                context.close(promise: nil)
                return
            }
        case .end:
            readingRequest = false
            if dropping { dropping = false; return }
        }
        context.fireChannelRead(data)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow, !responding {
            rejected431.increment()
            reject(context, status: .init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                   message: "request header fields too large: keep each field and the whole head small")
            return
        }
        context.fireErrorCaught(error)
    }

    /// Writes a short final answer and closes the connection.
    private func reject(_ context: ChannelHandlerContext, status: HTTPResponse.Status, message: String, retryAfter: Int? = nil, close: Bool = true) {
        let body = ByteBuffer(string: message + "\n")
        var head = HTTPResponse(status: status, headerFields: [
            .contentType: "text/plain; charset=utf-8", .contentLength: "\(body.readableBytes)",
        ])
        if let retryAfter { head.headerFields[.retryAfter] = "\(retryAfter)" }
        if !isStream, close { head.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        guard close else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let isStream = self.isStream
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if isStream {
                loopBound.value.close(promise: nil)
            } else {
                LingeringClose.start(loopBound.value.channel)
            }
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            ledger.responsesStarted += 1
            if isStream {
                context.write(wrapOutboundOut(.head(head)), promise: promise)
                return
            }
            if ledger.responsesStarted >= maxRequests || guardian?.isNearCapacity == true || ledger.closeAfterResponse
                || head.headerFields[.connection]?.lowercased() == "close" {
                ledger.closeAfterResponse = true
                head.headerFields[.connection] = "close"
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.body(body)), promise: promise)
        case .end(let trailers):
            responsesFinished += 1
            ledger.lastActivity = context.eventLoop.now
            if !held.isEmpty { held.removeFirst().release() }
            if ledger.closeAfterResponse {
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
