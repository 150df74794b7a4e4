public import Edge
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import HTTPTypes
public import IPAddress
public import NIOCore
public import NIOHTTPTypes
import Synchronization
import TextFormats

/// Answers the hot routes on the event loop, after NIO's HTTP decoder, without a task, a
/// router or middleware: pre-encoded snapshot reads and `/ip` at once, claims once their
/// group commit is durable (`FastReply.deferred`). The same handler sits in every HTTP/1.1
/// connection (cleartext or TLS) and every HTTP/2 stream; NIO's decoder has parsed every
/// byte before this handler sees a request.
///
/// Why: the read routes of a busy game are served from bytes encoded once per snapshot, so
/// what costs is the path to them. Through Hummingbird's async channel, router and middleware
/// a cached read cost about twice the CPU of answering from a channel handler (profiled with
/// `perf`, see bench/reads.sh).
///
/// The `Responder` decides: it gets the request head and the connection's client address and
/// returns an answer, a deferred answer, or nil to pass the request on to the application
/// unchanged. It applies the same admission as the application (`RequestAdmission`) and
/// answers the same way, so the two paths cannot disagree.
///
/// Placed after `ConnectionLifecycleHandler`, so connection limits, in-flight budgets and size
/// limits apply first, and its answers flow back through that handler (request counts,
/// `Connection: close`, the idle clock, the budget returned at the answer's end). Answers keep
/// the order of a pipelining client: a request is answered here only when the application
/// owes no earlier response on the connection, and while a deferred answer is outstanding the
/// request parts read meanwhile wait, in order, until it is written.
public final class FastResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// A complete answer: its head (framing headers are added here) and body.
    public struct Answer: Sendable {
        public var head: HTTPResponse
        public var body: ByteBuffer?
        /// Parts written after `body`: a body kept in pieces is sent without joining them.
        public var moreBody: [ByteBuffer] = []
        public init(head: HTTPResponse, body: ByteBuffer?) {
            self.head = head
            self.body = body
        }

        /// A body in parts (none for an empty one).
        public init(head: HTTPResponse, parts: [ByteBuffer]) {
            self.head = head
            body = parts.first
            moreBody = Array(parts.dropFirst())
        }

        var contentLength: Int { (body?.readableBytes ?? 0) + moreBody.readableBytes }
    }

    public typealias Responder = @Sendable (_ request: HTTPRequest, _ client: IPAddress?) -> FastReply?

    private let responder: Responder
    private let clientOf: @Sendable (any Channel) -> IPAddress?
    private let serverName: String?
    private var client: IPAddress??
    /// Requests handed to the application and not yet answered by it.
    private var applicationOwes = 0
    /// Dropping the body and end of a request answered here.
    private var swallowing = false
    private var needsFlush = false
    /// A deferred answer is outstanding: request parts read meanwhile wait in `waiting`.
    private var awaiting = false
    private var waiting: [HTTPRequestPart] = []
    private var waitingBytes = 0
    /// A graceful-shutdown request that arrived while an answer was outstanding.
    private var heldQuiesce: Any?
    /// Most body bytes, and parts, kept while an answer is outstanding before the client is cut off.
    static let maxWaitingBytes = 1 << 20
    static let maxWaitingParts = 4096

    /// Where deferred answers are handed to this connection's loop; a server shares one
    /// registry between its connections, so a loop drains all of a batch's answers at once.
    private let mailboxes: EventLoopMailboxes
    private var mailbox: EventLoopMailbox?

    /// - Parameters:
    ///   - client: the connection's client address (the TCP peer, or a PROXY-announced one),
    ///     asked once per connection.
    ///   - serverName: the `Server` header the application sends too.
    public init(serverName: String?, mailboxes: EventLoopMailboxes = EventLoopMailboxes(),
                client: @escaping @Sendable (any Channel) -> IPAddress?, responder: @escaping Responder) {
        self.responder = responder
        self.clientOf = client
        self.serverName = serverName
        self.mailboxes = mailboxes
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if awaiting {
            // The rest of the request being answered is dropped now; what follows it waits.
            if swallowing, waiting.isEmpty {
                if case .head = part {} else {
                    _ = handle(part, context: context)
                    return
                }
            }
            hold(part, context: context)
            return
        }
        _ = handle(part, context: context)
    }

    private func hold(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        if case .body(let bytes) = part { waitingBytes += bytes.readableBytes }
        waiting.append(part)
        if waiting.count > Self.maxWaitingParts || waitingBytes > Self.maxWaitingBytes {
            waiting.removeAll()
            context.close(promise: nil)
        }
    }

    /// Answers or swallows `part`, or hands it to the application (true).
    @discardableResult
    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) -> Bool {
        switch part {
        case .head(let request):
            if applicationOwes == 0 {
                if client == nil { client = .some(clientOf(context.channel)) }
                switch responder(request, client!) {
                case .answer(var answer)?:
                    swallowing = true
                    write(&answer, for: request, context: context)
                    needsFlush = true
                    return false
                case .deferred(let start)?:
                    swallowing = true
                    awaiting = true
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    let mailbox = self.mailbox ?? mailboxes.mailbox(for: context.eventLoop)
                    self.mailbox = mailbox
                    start { makeAnswer in
                        mailbox.post {
                            let (handler, context) = loopBound.value
                            handler.finish(makeAnswer(), for: request, context: context)
                        }
                    }
                    return false
                case nil:
                    break
                }
            }
            applicationOwes += 1
        case .body:
            if swallowing { return false }
        case .end:
            if swallowing {
                swallowing = false
                return false
            }
        }
        context.fireChannelRead(wrapInboundOut(part))
        return true
    }

    /// Writes a deferred answer, then goes on with what was read meanwhile.
    private func finish(_ answer: Answer, for request: HTTPRequest, context: ChannelHandlerContext) {
        awaiting = false
        guard context.channel.isActive else {
            waiting.removeAll()
            return
        }
        var answer = answer
        write(&answer, for: request, context: context)
        context.flush()
        var forwarded = false
        while !awaiting, !waiting.isEmpty {
            let part = waiting.removeFirst()
            if case .body(let bytes) = part { waitingBytes -= bytes.readableBytes }
            if handle(part, context: context) { forwarded = true }
        }
        if waiting.isEmpty { waitingBytes = 0 }
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        // The application reads what was handed to it when a read completes.
        if forwarded { context.fireChannelReadComplete() }
        if !awaiting, let event = heldQuiesce {
            heldQuiesce = nil
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func write(_ answer: inout Answer, for request: HTTPRequest, context: ChannelHandlerContext) {
        Self.complete(&answer, for: request, serverName: serverName)
        let body = answer.body ?? ByteBuffer()
        context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
        if request.method != .head, answer.head.status != .notModified {
            if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(body)), promise: nil) }
            for part in answer.moreBody where part.readableBytes > 0 { context.write(wrapOutboundOut(.body(part)), promise: nil) }
        }
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown closes connections that owe no answer; ours is not yet written.
        if awaiting, event is ChannelShouldQuiesceEvent {
            heldQuiesce = event
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { applicationOwes -= 1 }
        context.write(data, promise: promise)
    }

    /// Adds what every answer carries: `Date`, `Server`, `X-Request-ID` (unless the responder
    /// set it: the client's or a new one), `Content-Length` (not on 304), and `Connection: close` when the client asked.
    /// The responder's head carries none of these fields.
    static func complete(_ answer: inout Answer, for request: HTTPRequest, serverName: String?) {
        answer.head.headerFields.append(HTTPField(name: .date, value: HTTPDate.now()))
        if let serverName { answer.head.headerFields.append(HTTPField(name: .server, value: serverName)) }
        if answer.head.headerFields[RequestID.field] == nil {
            answer.head.headerFields.append(HTTPField(name: RequestID.field, value: RequestID.acceptable(request.headerFields.value(of: RequestID.field)) ?? RequestID.next()))
        }
        if let connection = request.headerFields.value(of: .connection), connection.lowercased().contains("close") {
            answer.head.headerFields.append(HTTPField(name: .connection, value: "close"))
        }
        if answer.head.status != .notModified {
            answer.head.headerFields.append(HTTPField(name: .contentLength, value: String(answer.contentLength)))
        }
    }
}
