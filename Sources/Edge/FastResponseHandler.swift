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

/// Answers requests whose whole response already exists (pre-encoded snapshots) on the event
/// loop, as the request head is read, without a task, a router or middleware.
///
/// Why: the read routes of a busy game are served from bytes encoded once per snapshot, so
/// what costs is the path to them. Through Hummingbird's async channel, router and middleware
/// a cached read cost about twice the CPU of writing the same bytes from a channel handler
/// (profiled with `perf`, see bench/reads.sh).
///
/// The `Responder` decides: it gets the request head and the connection's client address and
/// returns a complete answer, or nil to pass the request on to the application unchanged. It
/// must apply every guard the application would (bans, rate limits, policies) and return nil
/// whenever one of them would answer differently, so the application produces every refusal
/// and every answer is the same on both paths.
///
/// Placed after `ConnectionLifecycleHandler`, so connection limits, admission budgets and size
/// limits apply first, and its answers flow back through that handler. Answers keep the order
/// of a pipelining client: a request is answered here only when the application owes no
/// earlier response on the connection.
public final class FastResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// A complete answer: its head (framing headers are added here) and body.
    public struct Answer: Sendable {
        public var head: HTTPResponse
        public var body: ByteBuffer?
        public init(head: HTTPResponse, body: ByteBuffer?) {
            self.head = head
            self.body = body
        }
    }

    public typealias Responder = @Sendable (_ request: HTTPRequest, _ client: IPAddress?) -> Answer?

    private let responder: Responder
    private let clientOf: @Sendable (any Channel) -> IPAddress?
    private let serverName: String?
    private var client: IPAddress??
    /// Shared with `HTTP1FastPathHandler` when that answers before the HTTP decoder.
    private var ledger = ConnectionLedger()
    /// Dropping the body and end of a request answered here.
    private var swallowing = false
    private var needsFlush = false

    /// - Parameters:
    ///   - client: the connection's client address (the TCP peer, or a PROXY-announced one),
    ///     asked once per connection.
    ///   - serverName: the `Server` header the application sends too.
    public init(serverName: String?, client: @escaping @Sendable (any Channel) -> IPAddress?, responder: @escaping Responder) {
        self.responder = responder
        self.clientOf = client
        self.serverName = serverName
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if let early = try? context.pipeline.syncOperations.handler(type: HTTP1FastPathHandler.self) { ledger = early.ledger }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            if ledger.applicationOwes == 0, request.method == .get || request.method == .head {
                if client == nil { client = .some(clientOf(context.channel)) }
                if var answer = responder(request, client!) {
                    swallowing = true
                    Self.complete(&answer, for: request, serverName: serverName)
                    let body = answer.body ?? ByteBuffer()
                    context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
                    if request.method != .head, answer.head.status != .notModified, body.readableBytes > 0 {
                        context.write(wrapOutboundOut(.body(body)), promise: nil)
                    }
                    context.write(wrapOutboundOut(.end(nil)), promise: nil)
                    needsFlush = true
                    return
                }
            }
            ledger.applicationOwes += 1
        case .body:
            if swallowing { return }
        case .end:
            if swallowing {
                swallowing = false
                return
            }
        }
        context.fireChannelRead(data)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { ledger.applicationOwes -= 1 }
        context.write(data, promise: promise)
    }

    /// Adds what every answer carries: `Date`, `Server`, `X-Request-ID` (the client's or a new
    /// one), `Content-Length` (not on 304), and `Connection: close` when the client asked.
    /// The responder's head carries none of these fields.
    static func complete(_ answer: inout Answer, for request: HTTPRequest, serverName: String?) {
        answer.head.headerFields.append(HTTPField(name: .date, value: HTTPDate.now()))
        if let serverName { answer.head.headerFields.append(HTTPField(name: .server, value: serverName)) }
        answer.head.headerFields.append(HTTPField(name: RequestID.field, value: RequestID.acceptable(request.headerFields.value(of: RequestID.field)) ?? RequestID.next()))
        if let connection = request.headerFields.value(of: .connection), connection.lowercased().contains("close") {
            answer.head.headerFields.append(HTTPField(name: .connection, value: "close"))
        }
        if answer.head.status != .notModified {
            answer.head.headerFields.append(HTTPField(name: .contentLength, value: String(answer.body?.readableBytes ?? 0)))
        }
    }
}
