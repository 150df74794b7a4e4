public import HTTPTypes
public import HummingbirdCore
import Metrics
public import IPAddress
public import Logging
public import NIOCore

/// Answers plain HTTP/1.1 requests for pre-encoded responses straight from the bytes read,
/// in front of the HTTP decoder: no parser callbacks, no conversion to and from HTTPTypes
/// parts, no encoder. Profiling a snapshot read showed those layers costing more than the
/// answer itself (see bench/reads.sh); this is the cleartext HTTP/1.1 twin of
/// `FastResponseHandler`, which still serves TLS and HTTP/2 after the decoder.
///
/// Safety rests on one rule: the handler cuts the byte stream only at the end of a request
/// head it has delimited itself, and only while every head so far was unambiguous. A head is
/// unambiguous when all its lines end in CRLF (no bare CR or LF), no line is folded, and it
/// announces no body (`Content-Length` other than 0, `Transfer-Encoding`), no protocol
/// switch (`Upgrade`, `CONNECT`). Such a head ends exactly where the decoder would end it,
/// so heads it does not answer are handed to the decoder whole and the decoder stays in step.
/// The first head it does not answer itself — ambiguous, refused by its own strict reading
/// (a field line without a colon, an invalid name), or simply not one of its routes — switches
/// the connection to pass-through for good: from then on every byte goes to the decoder
/// untouched, exactly as without this handler. The decoder is never handed a head and then
/// bypassed: if it refuses that head (and answers 400 and closes), nothing after it on the
/// connection can be answered here as if it were a new request.
///
/// A candidate (GET or HEAD, HTTP/1.1, origin-form target) goes to the same `Responder` as
/// `FastResponseHandler`; nil, or an earlier request the application still owes an answer
/// for, hands the head on. Answers count toward the connection's request limit and idle
/// clock (`ConnectionLedger`), honour `Connection: close`, the lifetime limit and the
/// connection cap's "no keep-alive near the cap".
public final class HTTP1FastPathHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    public struct Limits: Sendable {
        /// Longest head answered here (longer ones go to the decoder, which enforces its own limits).
        public var maxHeadBytes: Int
        public var maxFields: Int
        public var maxRequestsPerConnection: Int
        /// Request targets the responder may answer; other heads go on without being read further.
        public var candidate: @Sendable (_ target: UnsafeRawBufferPointer) -> Bool
        public init(maxHeadBytes: Int, maxFields: Int, maxRequestsPerConnection: Int,
                    candidate: @escaping @Sendable (_ target: UnsafeRawBufferPointer) -> Bool = { _ in true }) {
            self.maxHeadBytes = maxHeadBytes
            self.maxFields = maxFields
            self.maxRequestsPerConnection = maxRequestsPerConnection
            self.candidate = candidate
        }
    }

    let ledger = ConnectionLedger()
    public typealias Responder = @Sendable (_ request: HTTPRequest, _ client: IPAddress?) -> FastReply?
    private let responder: Responder
    private let clientOf: @Sendable (any Channel) -> IPAddress?
    private let serverName: String?
    private let limits: Limits
    private let guardian: ConnectionGuard?
    private var client: IPAddress??
    /// An incomplete head, kept until the rest arrives.
    private var buffered: ByteBuffer?
    private var passthrough = false
    private var closing = false
    private var needsFlush = false
    /// A deferred answer is outstanding: bytes read meanwhile wait in `buffered`.
    private var awaiting = false
    /// A graceful-shutdown request that arrived while an answer was outstanding.
    private var heldQuiesce: Any?
    /// Most bytes kept while an answer is outstanding before the client is cut off.
    private static let maxBufferedWhileAwaiting = 1 << 20

    /// The in-flight budgets `ConnectionLifecycleHandler` takes for the requests it sees.
    private let admission: ConnectionLifecycleHandler.Admission?
    /// The budget the outstanding deferred answer holds; returned in `finish`, which runs even
    /// when the connection has closed meanwhile.
    private var held: InFlightLimiter?
    private let shed = Counter(label: "ipquest_requests_shed_total")

    /// Where deferred answers are handed to this connection's loop; a server shares one
    /// registry between its connections, so a loop drains all of a batch's answers at once.
    private let mailboxes: EventLoopMailboxes
    private var mailbox: EventLoopMailbox?

    public init(serverName: String?, limits: Limits, guard guardian: ConnectionGuard?, admission: ConnectionLifecycleHandler.Admission? = nil,
                mailboxes: EventLoopMailboxes = EventLoopMailboxes(),
                client: @escaping @Sendable (any Channel) -> IPAddress?, responder: @escaping Responder) {
        self.mailboxes = mailboxes
        self.admission = admission
        self.serverName = serverName
        self.limits = limits
        self.guardian = guardian
        self.clientOf = client
        self.responder = responder
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if passthrough {
            context.fireChannelRead(data)
            return
        }
        if closing { return } // answered `Connection: close`; the rest is ignored
        var input = unwrapInboundIn(data)
        if var earlier = buffered {
            buffered = nil
            earlier.writeBuffer(&input)
            input = earlier
        }
        if awaiting {
            if input.readableBytes > Self.maxBufferedWhileAwaiting { context.close(promise: nil); return }
            buffered = input
            return
        }
        process(context, input)
    }

    private func process(_ context: ChannelHandlerContext, _ input: ByteBuffer) {
        var input = input
        while input.readableBytes > 0 {
            guard let length = Self.headLength(input) else {
                if input.readableBytes > limits.maxHeadBytes {
                    passOn(context, input) // the decoder answers 431
                } else {
                    buffered = input
                }
                return
            }
            let head = input.getSlice(at: input.readerIndex, length: length)!
            switch Self.classify(head, limits: limits) {
            case .ambiguous:
                passOn(context, input)
                return
            case .forward:
                passOn(context, input)
                return
            case .candidate(let request):
                if ledger.applicationOwes == 0 {
                    if client == nil { client = .some(clientOf(context.channel)) }
                    // The same in-flight budgets as requests that reach the decoder: over
                    // budget is 503 at once (the connection stays open for the retry).
                    let pool = admission.map { $0.isClaim(request.path ?? "/") ? $0.claims : $0.reads }
                    if let pool, !pool.tryAcquire() {
                        shed.increment()
                        input.moveReaderIndex(forwardBy: length)
                        var busy = FastResponseHandler.Answer(
                            head: HTTPResponse(status: .serviceUnavailable, headerFields: [.contentType: "text/plain; charset=utf-8", .retryAfter: "1"]),
                            body: ByteBuffer(string: "server busy; retry in 1 s\n"))
                        write(answer: &busy, for: request, context: context)
                        if closing { return }
                        continue
                    }
                    let reply = responder(request, client!)
                    if case .deferred = reply {} else { pool?.release() }
                    switch reply {
                    case .answer(var answer):
                        input.moveReaderIndex(forwardBy: length)
                        write(answer: &answer, for: request, context: context)
                        if closing { return }
                        continue
                    case .deferred(let start):
                        held = pool
                        input.moveReaderIndex(forwardBy: length)
                        if input.readableBytes > 0 { buffered = input }
                        awaiting = true
                        ledger.lastActivity = context.eventLoop.now
                        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                        let mailbox = self.mailbox ?? mailboxes.mailbox(for: context.eventLoop)
                        self.mailbox = mailbox
                        let answerOnLoop: FastReply.Done = { makeAnswer in
                            mailbox.post {
                                let (handler, context) = loopBound.value
                                handler.finish(makeAnswer(), for: request, context: context)
                            }
                        }
                        start(answerOnLoop)
                        return
                    case nil:
                        break
                    }
                }
                // Not answered here: the decoder takes over the connection.
                passOn(context, input)
                return
            }
        }
    }

    /// Writes a deferred answer, then goes on with what was read meanwhile.
    private func finish(_ answer: FastResponseHandler.Answer, for request: HTTPRequest, context: ChannelHandlerContext) {
        awaiting = false
        held?.release()
        held = nil
        guard context.channel.isActive else { return }
        var answer = answer
        write(answer: &answer, for: request, context: context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        if closing { return }
        if let rest = buffered {
            buffered = nil
            process(context, rest)
            if needsFlush {
                needsFlush = false
                context.flush()
            }
        }
        if !awaiting, let event = heldQuiesce {
            heldQuiesce = nil
            context.fireUserInboundEventTriggered(event)
        }
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

    public func handlerRemoved(context: ChannelHandlerContext) {
        if !awaiting, let buffered, buffered.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffered)) }
        buffered = nil
    }

    /// Everything from here on goes to the decoder as read.
    private func passOn(_ context: ChannelHandlerContext, _ input: ByteBuffer) {
        passthrough = true
        if input.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(input)) }
    }

    private func write(answer: inout FastResponseHandler.Answer, for request: HTTPRequest, context: ChannelHandlerContext) {
        FastResponseHandler.complete(&answer, for: request, serverName: serverName)
        ledger.responsesStarted += 1
        ledger.lastActivity = context.eventLoop.now
        if answer.head.headerFields.value(of: .connection) != nil || ledger.responsesStarted >= limits.maxRequestsPerConnection
            || ledger.closeAfterResponse || guardian?.isNearCapacity == true {
            answer.head.headerFields[.connection] = "close"
            closing = true
        }
        let hasBody = request.method != .head && answer.head.status != .notModified && (answer.body?.readableBytes ?? 0) > 0
        // A small body is copied behind the head (one buffer, one write); a large one is
        // written as it is, shared with every other reader of the snapshot.
        let inline = hasBody && answer.body!.readableBytes <= 16 * 1024
        var out = context.channel.allocator.buffer(capacity: 512 + (inline ? answer.body!.readableBytes : 0))
        out.writeStaticString("HTTP/1.1 ")
        out.writeString(String(answer.head.status.code))
        out.writeStaticString(" ")
        out.writeString(answer.head.status.reasonPhrase)
        out.writeStaticString("\r\n")
        for field in answer.head.headerFields {
            out.writeString(field.name.rawName)
            out.writeStaticString(": ")
            out.writeString(field.value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        if inline { out.writeImmutableBuffer(answer.body!) }
        var last = out
        if hasBody, !inline {
            context.write(NIOAny(out), promise: nil)
            last = answer.body!
        }
        guard closing else {
            context.write(NIOAny(last), promise: nil)
            needsFlush = true
            return
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(last)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }

    // MARK: Reading heads

    /// Bytes up to and including the first CRLF CRLF, or nil when it has not arrived.
    static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            let n = bytes.count
            guard n >= 4 else { return nil }
            var i = 3
            while i < n {
                if bytes[i] == 0x0A, bytes[i - 1] == 0x0D, bytes[i - 2] == 0x0A, bytes[i - 3] == 0x0D { return i + 1 }
                i += 1
            }
            return nil
        }
    }

    enum Classification {
        /// Cannot be delimited with certainty: pass everything through from here on.
        case ambiguous
        /// A clean head for the decoder.
        case forward
        /// A clean GET/HEAD the responder may answer.
        case candidate(HTTPRequest)
    }

    static func classify(_ head: ByteBuffer, limits: Limits) -> Classification {
        head.withUnsafeReadableBytes { bytes -> Classification in
            let n = bytes.count
            // Every CR is followed by LF and every LF preceded by CR.
            for i in 0..<n {
                let b = bytes[i]
                if b == 0x0D, i + 1 >= n || bytes[i + 1] != 0x0A { return .ambiguous }
                if b == 0x0A, i == 0 || bytes[i - 1] != 0x0D { return .ambiguous }
            }
            // Lines (without their CRLF); the last two CRLFs end the head.
            var lines: [Range<Int>] = []
            var start = 0
            var i = 0
            while i + 1 < n {
                if bytes[i] == 0x0D {
                    lines.append(start..<i)
                    start = i + 2
                    i += 2
                } else {
                    i += 1
                }
            }
            guard lines.count >= 2, lines.last!.isEmpty else { return .ambiguous }
            lines.removeLast()
            // Request line: METHOD SP target SP version.
            let requestLine = lines[0]
            var spaces: [Int] = []
            for j in requestLine where bytes[j] == 0x20 { spaces.append(j) }
            guard spaces.count == 2 else { return .ambiguous }
            let method = requestLine.lowerBound..<spaces[0]
            let target = (spaces[0] + 1)..<spaces[1]
            let version = (spaces[1] + 1)..<requestLine.upperBound
            guard !method.isEmpty, method.allSatisfy({ bytes[$0] >= 0x41 && bytes[$0] <= 0x5A }) else { return .ambiguous }
            if Self.equals(bytes, method, "CONNECT") { return .ambiguous }
            var answerable = (Self.equals(bytes, method, "GET") || Self.equals(bytes, method, "HEAD"))
                && Self.equals(bytes, version, "HTTP/1.1")
                && n <= limits.maxHeadBytes && lines.count - 1 <= limits.maxFields
                && !target.isEmpty && bytes[target.lowerBound] == 0x2F // "/"
                && target.allSatisfy { bytes[$0] > 0x20 && bytes[$0] < 0x7F }
                && limits.candidate(UnsafeRawBufferPointer(rebasing: bytes[target]))
            var fields = HTTPFields()
            var authority: String?
            for line in lines.dropFirst() {
                guard let first = line.first else { return .ambiguous }
                if bytes[first] == 0x20 || bytes[first] == 0x09 { return .ambiguous } // obs-fold
                guard let colon = line.first(where: { bytes[$0] == 0x3A }) else {
                    answerable = false // the decoder refuses it; still delimited
                    continue
                }
                let name = first..<colon
                var valueStart = colon + 1
                var valueEnd = line.upperBound
                while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                let value = valueStart..<valueEnd
                if Self.equalsIgnoringCase(bytes, name, "transfer-encoding") || Self.equalsIgnoringCase(bytes, name, "upgrade") {
                    return .ambiguous
                }
                if Self.equalsIgnoringCase(bytes, name, "content-length") {
                    if !Self.equals(bytes, value, "0") { return .ambiguous }
                    answerable = false // the decoder judges repeated or odd lengths
                    continue
                }
                guard answerable else { continue }
                guard value.allSatisfy({ bytes[$0] == 0x09 || (bytes[$0] >= 0x20 && bytes[$0] < 0x7F) }),
                      let fieldName = HTTPField.Name(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self))
                else {
                    answerable = false
                    continue
                }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self)
                if fieldName == Self.host {
                    if authority != nil { answerable = false } // two Host fields: the decoder's business
                    authority = text
                } else {
                    fields.append(HTTPField(name: fieldName, value: text))
                }
            }
            guard answerable else { return .forward }
            let path = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[target]), as: UTF8.self)
            let isHead = Self.equals(bytes, method, "HEAD")
            return .candidate(HTTPRequest(method: isHead ? .head : .get, scheme: nil, authority: authority, path: path, headerFields: fields))
        }
    }

    static let host = HTTPField.Name("Host")!

    static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        let t = text.utf8Start
        for (k, j) in range.enumerated() where bytes[j] != t[k] { return false }
        return true
    }

    /// `text` is lower-case ASCII.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        let t = text.utf8Start
        for (k, j) in range.enumerated() {
            var b = bytes[j]
            if b >= 0x41 && b <= 0x5A { b |= 0x20 }
            if b != t[k] { return false }
        }
        return true
    }
}

/// Puts an `HTTP1FastPathHandler` in front of an HTTP/1 child channel's pipeline (after a
/// PROXY protocol handler, when the channel is wrapped in `ProxyProtocolChannel`).
public struct HTTP1FastPathChannel<BaseChannel: ServerChildChannel>: ServerChildChannel {
    public typealias Value = BaseChannel.Value
    let base: BaseChannel
    let makeHandler: @Sendable () -> HTTP1FastPathHandler

    public init(_ base: BaseChannel, handler: @escaping @Sendable () -> HTTP1FastPathHandler) {
        self.base = base
        self.makeHandler = handler
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(makeHandler())
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
