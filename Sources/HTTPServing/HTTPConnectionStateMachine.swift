public import Edge
public import NIOCore

/// The rules of one HTTP/1 connection (or HTTP/2 stream) as a state machine: events in,
/// actions out, time passed in with each event. No channel, no timers, no clock of its own,
/// so every rule is tested by feeding events (`HTTPConnectionStateMachineTests`);
/// `ConnectionLifecycleHandler` is its only driver and does the I/O the actions name.
///
/// The rules: at most `maxRequests` answers per connection, at most `maxLifetime` per
/// connection, no keep-alive near the server's connection cap, a first head within
/// `firstHeadTimeout`, nothing read and nothing answered for `idleTimeout` closes the
/// connection (unless an answer is owed), declared bodies over `maxBodyBytes` get 413 and
/// chunked ones that grow past it close the connection, heads over the decoder's limits get
/// 431, and a request beyond its in-flight budget gets 503 at once. On an HTTP/2 stream only
/// the size and budget rules apply: counts, lifetime and idleness belong to the connection.
public struct HTTPConnectionStateMachine {
    public struct Limits: Sendable {
        public var maxRequests: Int
        public var maxLifetime: TimeAmount?
        public var idleTimeout: TimeAmount?
        public var firstHeadTimeout: TimeAmount?
        public var maxBodyBytes: Int
        public init(maxRequests: Int, maxLifetime: TimeAmount? = nil, idleTimeout: TimeAmount? = nil,
                    firstHeadTimeout: TimeAmount? = nil, maxBodyBytes: Int = 64 * 1024) {
            self.maxRequests = maxRequests
            self.maxLifetime = maxLifetime
            self.idleTimeout = idleTimeout
            self.firstHeadTimeout = firstHeadTimeout
            self.maxBodyBytes = maxBodyBytes
        }
    }

    /// The answers this layer gives itself; their words live here only.
    public enum Refusal: Equatable, Sendable {
        case bodyTooLarge(declared: Int, limit: Int)
        case headTooLarge
        case busy

        public var status: Int {
            switch self {
            case .bodyTooLarge: 413
            case .headTooLarge: 431
            case .busy: 503
            }
        }

        public var reason: String {
            switch self {
            case .bodyTooLarge: "Content Too Large"
            case .headTooLarge: "Request Header Fields Too Large"
            case .busy: "Service Unavailable"
            }
        }

        public var message: String {
            switch self {
            case .bodyTooLarge(let declared, let limit): "request body too large: \(declared) bytes, at most \(limit)"
            case .headTooLarge: "request header fields too large: keep each field and the whole head small"
            case .busy: "server busy; retry in 1 s"
            }
        }

        public var retryAfter: Int? { self == .busy ? 1 : nil }
    }

    /// What to do with a request part just read.
    public enum ReadAction: Equatable {
        /// Hand it on to the application.
        case forward
        /// Drop it (a refused request's remaining parts, or one read while hanging up).
        case drop
        /// Write this refusal; close after it when `close`.
        case refuse(Refusal, close: Bool)
        /// Close the connection now.
        case close
    }

    /// What to do when a timer fires.
    public enum TimerAction: Equatable {
        case none
        case close
        /// Look again at this deadline.
        case checkAgain(at: NIODeadline)
    }

    public enum Timer: Hashable, Sendable { case idle, firstHead, lifetime }

    public let limits: Limits
    public let isStream: Bool
    /// Request heads admitted and answers finished: a pipelining client can be ahead of us.
    private(set) var requests = 0
    private(set) var responsesFinished = 0
    private(set) var responsesStarted = 0
    private var readingRequest = false
    private var bodyBytes = 0
    private var dropping = false
    private(set) var lastActivity: NIODeadline
    private(set) var closeAfterResponse = false

    public init(limits: Limits, isStream: Bool, now: NIODeadline) {
        self.limits = limits
        self.isStream = isStream
        self.lastActivity = now
    }

    /// Whether an admitted request still waits for its answer.
    public var isResponding: Bool { responsesFinished < requests }

    /// The timers to start when the connection opens, with their deadlines.
    public func timers(now: NIODeadline) -> [(Timer, NIODeadline)] {
        guard !isStream else { return [] }
        var timers: [(Timer, NIODeadline)] = []
        if let t = limits.idleTimeout { timers.append((.idle, now + t)) }
        if let t = limits.firstHeadTimeout { timers.append((.firstHead, now + t)) }
        if let t = limits.maxLifetime { timers.append((.lifetime, now + t)) }
        return timers
    }

    /// A request head was read. `admit` takes the request's in-flight budget (called only when
    /// everything before it passed; false means over budget); `wantsClose` (the client's
    /// `Connection: close`) is read only for a refusal that would keep the connection.
    public mutating func headRead(contentLength: Int?, wantsClose: @autoclosure () -> Bool, now: NIODeadline, admit: () -> Bool) -> ReadAction {
        lastActivity = now
        readingRequest = true
        bodyBytes = 0
        if let length = contentLength, length > limits.maxBodyBytes {
            dropping = true
            return refuseOrHangUp(.bodyTooLarge(declared: length, limit: limits.maxBodyBytes), close: true)
        }
        guard admit() else {
            dropping = true
            // An ordinary answer: the connection stays open for the retry unless the client asked to close.
            return refuseOrHangUp(.busy, close: wantsClose())
        }
        requests += 1
        return .forward
    }

    /// Refuses now, or, when earlier answers are still owed, answers those and hangs up.
    private mutating func refuseOrHangUp(_ refusal: Refusal, close: @autoclosure () -> Bool) -> ReadAction {
        if isResponding {
            closeAfterResponse = true
            return .drop
        }
        return .refuse(refusal, close: close())
    }

    public mutating func bodyRead(bytes: Int, now: NIODeadline) -> ReadAction {
        lastActivity = now
        if dropping { return .drop }
        bodyBytes += bytes
        if bodyBytes > limits.maxBodyBytes {
            dropping = true
            return .close
        }
        return .forward
    }

    public mutating func endRead(now: NIODeadline) -> ReadAction {
        lastActivity = now
        readingRequest = false
        if dropping {
            dropping = false
            return .drop
        }
        return .forward
    }

    /// The decoder refused a head for its size: 431 when no earlier answer is owed.
    public func headerOverflow() -> ReadAction {
        isResponding ? .forward : .refuse(.headTooLarge, close: true)
    }

    /// An answer's head is being written; true when it must carry `Connection: close`.
    public mutating func responseHeadWritten(askedToClose: Bool, nearCapacity: Bool) -> Bool {
        responsesStarted += 1
        if isStream { return false }
        if responsesStarted >= limits.maxRequests || nearCapacity || closeAfterResponse || askedToClose {
            closeAfterResponse = true
        }
        return closeAfterResponse
    }

    /// An answer ended; true when the connection closes once it is written.
    public mutating func responseEndWritten(now: NIODeadline) -> Bool {
        responsesFinished += 1
        lastActivity = now
        return closeAfterResponse
    }

    public mutating func timerFired(_ timer: Timer, now: NIODeadline) -> TimerAction {
        switch timer {
        case .idle:
            guard let idleTimeout = limits.idleTimeout else { return .none }
            // Answering a request that was read in full: not idle, look again later.
            if !readingRequest, isResponding { return .checkAgain(at: now + idleTimeout) }
            let due = lastActivity + idleTimeout
            return due <= now ? .close : .checkAgain(at: due)
        case .firstHead:
            // No head read and none answered: the client never asked.
            return requests == 0 && !readingRequest && responsesStarted == 0 ? .close : .none
        case .lifetime:
            // Idle: close now; busy: close after the current answer.
            if isResponding {
                closeAfterResponse = true
                return .none
            }
            return .close
        }
    }
}
