public import Edge
import HTTPTypes
import Metrics
public import NIOCore
import NIOHTTP1
public import NIOHTTPTypes

/// Per-connection HTTP/1 policy, placed after the HTTP codec: the I/O side of
/// `HTTPConnectionStateMachine`, which holds every rule (request count, lifetime, idle and
/// first-head timeouts, body and head sizes, in-flight budgets). This handler feeds it the
/// parts read and written and the timers' firings, and does what it answers: forward, drop,
/// refuse, add `Connection: close`, close. When a limit applies, the response carries
/// `Connection: close` and the connection is closed once that response is written.
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
/// Hummingbird because requests answered on the event loop (`FastResponseHandler`) never
/// reach Hummingbird's handler.
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

    private let limits: HTTPConnectionStateMachine.Limits
    private var state: HTTPConnectionStateMachine!
    private var timers: [HTTPConnectionStateMachine.Timer: Scheduled<Void>] = [:]
    private let guardian: ConnectionGuard?
    private let admission: Admission?
    /// The budget each admitted, unanswered request holds, oldest first.
    private var held: [InFlightLimiter] = []
    private let shed = Counter(label: "ipquest_requests_shed_total")
    private let rejected431 = Counter(label: "ipquest_requests_rejected_total", dimensions: [("reason", "header_too_large")])
    private let rejected413 = Counter(label: "ipquest_requests_rejected_total", dimensions: [("reason", "body_too_large")])
    private let closedForFirstHead = Counter(label: "ipquest_connections_closed_total", dimensions: [("reason", "first_head_timeout")])

    public init(maxRequests: Int, maxLifetime: TimeAmount?, guard guardian: ConnectionGuard?, maxBodyBytes: Int = 64 * 1024,
                admission: Admission? = nil, idleTimeout: TimeAmount? = nil, firstHeadTimeout: TimeAmount? = nil) {
        self.limits = .init(maxRequests: maxRequests, maxLifetime: maxLifetime, idleTimeout: idleTimeout,
                            firstHeadTimeout: firstHeadTimeout, maxBodyBytes: maxBodyBytes)
        self.admission = admission
        self.guardian = guardian
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        state = HTTPConnectionStateMachine(limits: limits, isStream: context.channel.parent?.parent != nil, now: now)
        for (timer, deadline) in state.timers(now: now) { schedule(timer, at: deadline, context) }
    }

    private func schedule(_ timer: HTTPConnectionStateMachine.Timer, at deadline: NIODeadline, _ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timers[timer] = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            switch handler.state.timerFired(timer, now: context.eventLoop.now) {
            case .none: break
            case .close:
                if timer == .firstHead { handler.closedForFirstHead.increment() }
                context.close(promise: nil)
            case .checkAgain(let at): handler.schedule(timer, at: at, context)
            }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
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
        let now = context.eventLoop.now
        let action: HTTPConnectionStateMachine.ReadAction
        switch unwrapInboundIn(data) {
        case .head(let head):
            action = state.headRead(contentLength: head.headerFields.value(of: .contentLength).flatMap(Int.init),
                                    wantsClose: head.headerFields.value(of: .connection)?.lowercased().contains("close") ?? false, now: now) {
                guard let admission else { return true }
                let pool = admission.isClaim(head.path ?? "/") ? admission.claims : admission.reads
                guard pool.tryAcquire() else { return false }
                held.append(pool)
                return true
            }
            if case .refuse(.bodyTooLarge, _) = action { rejected413.increment() }
            if case .refuse(.busy, _) = action { shed.increment() }
        case .body(let buffer):
            action = state.bodyRead(bytes: buffer.readableBytes, now: now)
            if action == .close { rejected413.increment() }
        case .end:
            action = state.endRead(now: now)
        }
        switch action {
        case .forward: context.fireChannelRead(data)
        case .drop: break
        case .close: context.close(promise: nil)
        case .refuse(let refusal, let close): refuse(context, refusal, close: close)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow,
           case .refuse(let refusal, let close) = state.headerOverflow() {
            rejected431.increment()
            refuse(context, refusal, close: close)
            return
        }
        context.fireErrorCaught(error)
    }

    /// Writes a short final answer (past this handler's own accounting) and closes the
    /// connection after it when `close`.
    private func refuse(_ context: ChannelHandlerContext, _ refusal: HTTPConnectionStateMachine.Refusal, close: Bool) {
        let body = ByteBuffer(string: refusal.message + "\n")
        var head = HTTPResponse(status: .init(code: refusal.status, reasonPhrase: refusal.reason), headerFields: [
            .contentType: "text/plain; charset=utf-8", .contentLength: "\(body.readableBytes)",
        ])
        if let retryAfter = refusal.retryAfter { head.headerFields[.retryAfter] = "\(retryAfter)" }
        let isStream = state.isStream
        if !isStream, close { head.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        guard close else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
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
            let asked = head.headerFields.value(of: .connection)?.lowercased() == "close"
            if state.responseHeadWritten(askedToClose: asked, nearCapacity: guardian?.isNearCapacity == true) {
                head.headerFields[.connection] = "close"
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.body(body)), promise: promise)
        case .end(let trailers):
            if !held.isEmpty { held.removeFirst().release() }
            guard state.responseEndWritten(now: context.eventLoop.now) else {
                context.write(wrapOutboundOut(.end(trailers)), promise: promise)
                return
            }
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: written)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}
