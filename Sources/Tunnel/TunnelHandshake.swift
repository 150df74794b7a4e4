import IPAddress
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The handshake of one client connection, from its first byte to the relay or the refusal: examine the
/// request head, check it against the configuration, resolve the target, connect to each of its addresses in
/// turn, answer. Both engines drive it — NIO's `ProxyConnectionHandler` and the epoll engine's `EpollTunnel` —
/// so they refuse for the same reasons, at the same times, with the same bytes.
///
/// It does no I/O and reads no clock: each event says what happened (and when, where time matters) and returns
/// the one thing the engine does next. `deadline` is when the current step runs out; the engine calls
/// `timerFired(now:)` once that time has come. Every phase but `relaying` and `closed` has a deadline, and a
/// deadline that passes moves the handshake on (to an answer, then to the close), so no connection stays in
/// it longer than the head timeout + the connect timeout + `answerDrainTime`.
///
/// The rules (docs/tunnel.md, "Answers"):
/// - 400 for a malformed or oversized head (`ProxyRequestHeadParser`), or input closed mid-head; 405 for other
///   methods unless forwarding is on; 407/403 for the configuration's rules (`Settings.refusal(for:)`);
/// - 408 when the head is not complete within `initiation_timeout`;
/// - 502 when the name does not resolve or every address fails; 504 when resolving + connecting outlive
///   `connect_timeout` (or the last attempt timed out); 403 when every resolved address is in a denied network;
/// - 503 when the connection was over the cap;
/// - 200 for CONNECT once connected; a forwarded request gets no answer of ours (the target's is relayed).
/// In tcp mode nothing is answered (the client speaks some other protocol): a refusal closes the connection.
///
/// After an error answer the connection is drained (the client's bytes read and dropped) until the client
/// closes or `answerDrainTime` passes, so that closing with unread bytes does not reset the connection before
/// the client has read the answer. A client that half-closes while the target is being reached still gets
/// its tunnel (its request and early bytes were complete); one whose connection fails is given up on.
struct TunnelHandshake {
    // MARK: configuration

    /// What the handshake reads from the configuration, taken out once per server (tunnels share it).
    final class Settings: Sendable {
        enum Target: Sendable {
            /// The request head names the target (http, https).
            case requested
            /// tcp mode: every connection goes to `destination`; `addresses` when it is an address literal.
            case fixed(TargetAddress, addresses: [SocketAddress]?, description: String)
        }

        let target: Target
        let forwardPlainHTTP: Bool
        let initiationTimeout: TimeAmount
        let connectTimeout: TimeAmount
        let allowedTargets: TargetPattern?
        let allowedPorts: Set<UInt16>
        let deniedNetworks: PrefixSet
        let proxyAuthorization: ProxyAuthorization?

        /// How long the connection of an error answer stays open to read and drop what the client still sends.
        static let answerDrainTime: TimeAmount = .seconds(2)

        init(_ configuration: TunnelConfiguration, mode: TunnelMode) {
            switch mode {
            case .http, .https:
                target = .requested
            case .tcp(let destination):
                var addresses: [SocketAddress]?
                if IPAddress(destination.host) != nil,
                    let literal = try? SocketAddress(ipAddress: destination.host, port: destination.port)
                {
                    addresses = [literal]
                }
                target = .fixed(destination, addresses: addresses, description: destination.description)
            }
            forwardPlainHTTP = configuration.forwardPlainHTTP
            initiationTimeout = TimeAmount(configuration.clientConnection.initiationTimeout)
            connectTimeout = TimeAmount(configuration.targetConnection.connectTimeout)
            allowedTargets = configuration.targetConnection.allowedTargets
            allowedPorts = configuration.targetConnection.allowedPorts
            deniedNetworks = configuration.targetConnection.deniedNetworks
            proxyAuthorization = configuration.clientConnection.proxyAuthorization
        }

        /// Authorization and target rules that need no DNS: the refusal, if any.
        func refusal(for head: ProxyRequestHead) -> (TunnelStatus, String)? {
            if let auth = proxyAuthorization, !BasicProxyCredentials.isAuthorized(head.proxyAuthorization, users: auth.users) {
                return (.proxyAuthenticationRequired, "valid Proxy-Authorization Basic credentials required")
            }
            if let allowedTargets {
                let subject = head.kind == .connect ? head.requestTarget : head.target.description
                if !allowedTargets.matches(subject) { return (.forbidden, "target not allowed") }
            }
            if !allowedPorts.isEmpty, !allowedPorts.contains(UInt16(head.target.port)) {
                return (.forbidden, "target port not allowed")
            }
            if let literal = IPAddress(head.target.host), deniedNetworks.contains(literal) {
                return (.forbidden, "target network not allowed")
            }
            return nil
        }
    }

    static func isDenied(_ address: SocketAddress, by denied: PrefixSet) -> Bool {
        if denied.isEmpty { return false }
        guard let ip = ipAddress(of: address) else { return true }
        return denied.contains(ip)
    }

    /// The address of a resolved socket address, read from its `sockaddr` (no text round trip).
    static func ipAddress(of address: SocketAddress) -> IPAddress? {
        switch address {
        // Read at the fields' fixed offsets in `sockaddr_in` (4) and `sockaddr_in6` (8): their C
        // members come from a module of NIO's this one does not import.
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address) { .v4(IPv4Address(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address) { IPv6Address(bytes: UnsafeRawBufferPointer(rebasing: $0[8..<24])).map(IPAddress.v6) }
        case .unixDomainSocket:
            return nil
        }
    }

    // MARK: events and actions

    enum Phase: Equatable, Sendable {
        /// Before `start`.
        case idle
        /// Reading the request head.
        case head
        /// Waiting for the target's addresses.
        case resolving
        /// A connection attempt is under way.
        case connecting
        /// An error answer was sent; the client's input is drained until it closes or the deadline.
        case answering
        /// The tunnel is up: the relay has it from here (terminal).
        case relaying
        /// The connection is to be closed (terminal).
        case closed
    }

    /// What a handshake that ends without a relay is logged and counted as (`result`, `detail`). A relay's
    /// outcome is its summary, logged as `ok` when it ends.
    struct Outcome: Equatable, Sendable {
        let result: String
        let detail: String

        static func refused(_ status: TunnelStatus, _ detail: String) -> Outcome {
            Outcome(result: status.resultName, detail: detail)
        }

        static let clientClosedResult = "client_closed"
        static let clientClosed = Outcome(
            result: clientClosedResult, detail: "client closed the connection before the tunnel was established")

        /// Every value `result` takes (the metrics create a counter for each).
        static let resultNames = TunnelStatus.allCases.map(\.resultName) + [clientClosedResult]
    }

    /// An answer to the client, its bytes complete (status line, headers, body).
    struct Answer: Equatable, Sendable {
        let status: TunnelStatus
        let bytes: [UInt8]
        /// What to log and count; nil for 200 (the relay's summary is logged when it ends).
        let outcome: Outcome?
    }

    /// How a tunnel starts.
    struct Relay: Equatable, Sendable {
        /// Bytes for the target before anything else: what the client sent after its head (and, for a
        /// forwarded request, the head rewritten in origin form before them).
        let toTarget: [UInt8]
        /// The client's input already ended (NIO saw the EOF; epoll leaves it in the socket for the relay).
        let clientInputClosed: Bool
    }

    enum AfterAnswer: Equatable, Sendable {
        /// Start relaying (after 200).
        case relay(Relay)
        /// Shut the output once the answer is written, then read and drop the client's input until it ends
        /// (`clientClosedInput`) or the deadline passes (`timerFired`); both return `.close`.
        case drainThenClose
        /// Close once the answer is written (the client's input already ended). The deadline still bounds the
        /// write: `timerFired` returns `.close`.
        case close
    }

    enum Action: Equatable, Sendable {
        /// Read the client (more of the head, or the input of an answered connection being drained).
        case read
        /// Nothing to do until the next event; the client is not read (its bytes wait in the socket).
        case wait
        /// Resolve the name, then call `resolved` or `resolveFailed`.
        case resolve(host: String, port: Int)
        /// Connect (giving up at `deadline`), then call `connected` or `connectFailed`.
        case connect(SocketAddress)
        /// Send the answer, then go on as `then` says. Log `answer.outcome` when there is one.
        case answer(Answer, then: AfterAnswer)
        /// Start relaying with no answer of ours (tcp mode, forwarded requests).
        case relay(Relay)
        /// Close the connection (and any target connection or attempt) now; log the outcome if there is one.
        case close(Outcome?)

        /// Whether the handshake is over: the relay or the close is all that is left (`answer … then: .close`
        /// and `drainThenClose` still end in `.close`).
        var isTerminal: Bool {
            switch self {
            case .relay, .close, .answer(_, then: .relay): true
            default: false
            }
        }
    }

    /// Why a connection attempt failed.
    enum ConnectFailure: Equatable, Sendable {
        case timedOut
        case refused
        case unreachable
        case other

        init(errno code: Int32) {
            switch code {
            case ETIMEDOUT: self = .timedOut
            case ECONNREFUSED: self = .refused
            case ENETUNREACH, EHOSTUNREACH: self = .unreachable
            default: self = .other
            }
        }

        var detail: String {
            switch self {
            case .timedOut: "connecting to the target timed out"
            case .refused: "cannot connect to the target: connection refused"
            case .unreachable: "cannot connect to the target: unreachable"
            case .other: "cannot connect to the target"
            }
        }
    }

    // MARK: state

    let settings: Settings
    private(set) var phase = Phase.idle
    /// When the current phase runs out (`timerFired`); nil once the handshake is over.
    private(set) var deadline: NIODeadline?
    /// The target as logged: "-" until the head names it.
    private(set) var target: String
    /// The head so far; once it is complete, the bytes received after it (for the target).
    private var buffer: [UInt8] = []
    private var requestLineChecked = false
    /// What was asked for: nil in tcp mode.
    private var kind: ProxyRequestHead.Kind?
    private var host = ""
    private var candidates: ArraySlice<SocketAddress> = []
    private var clientInputClosed = false

    /// The full 200 answer.
    static let established = Array(TunnelStatus.established.response(detail: "").utf8)

    init(settings: Settings) {
        self.settings = settings
        if case .fixed(_, _, let description) = settings.target { target = description } else { target = "-" }
    }

    /// Whether the engine reads the client now: the head is not complete yet, or an answered connection is
    /// drained. (Elsewhere the client's bytes stay in its socket until the relay reads them.)
    var readsClient: Bool { phase == .head || phase == .answering }

    /// Bytes of an incomplete head held so far (the epoll engine reads no more than the limit needs).
    var bufferedHeadBytes: Int { phase == .head ? buffer.count : 0 }

    // MARK: events

    /// The connection was accepted; `admitted` is false when it is over the connection cap.
    mutating func start(admitted: Bool, now: NIODeadline) -> Action {
        guard phase == .idle else { return .wait }
        guard admitted else { return refuse(.serviceUnavailable, "too many connections", now: now) }
        switch settings.target {
        case .fixed(let destination, let addresses, _):
            return beginConnecting(to: destination, addresses: addresses, now: now)
        case .requested:
            phase = .head
            deadline = now + settings.initiationTimeout
            return .read
        }
    }

    /// The client sent bytes.
    mutating func bytesReceived(_ bytes: some Collection<UInt8>, now: NIODeadline) -> Action {
        switch phase {
        case .head:
            let old = buffer.count
            buffer.append(contentsOf: bytes)
            return examineHead(addedFrom: old, now: now)
        case .resolving, .connecting:
            buffer.append(contentsOf: bytes)
            return .wait
        case .answering:
            return .read
        case .idle, .relaying, .closed:
            return .wait
        }
    }

    /// The client's input ended (EOF; it may still read).
    mutating func clientClosedInput(now: NIODeadline) -> Action {
        switch phase {
        case .head:
            clientInputClosed = true
            if buffer.isEmpty { return finish(nil) }
            return refuse(.badRequest, "connection closed before the request head was complete", now: now)
        case .resolving, .connecting:
            clientInputClosed = true
            return .wait
        case .idle, .answering:
            return finish(nil)
        case .relaying, .closed:
            return .wait
        }
    }

    /// The client's connection failed or is gone altogether (reset, error, closed).
    mutating func clientClosed() -> Action {
        switch phase {
        case .resolving, .connecting:
            return finish(.clientClosed)
        case .idle, .head, .answering:
            return finish(nil)
        case .relaying, .closed:
            return .wait
        }
    }

    mutating func resolved(_ addresses: [SocketAddress], now: NIODeadline) -> Action {
        guard phase == .resolving else { return .wait }
        if let deadline, now >= deadline { return refuse(.gatewayTimeout, "resolving \(host) timed out", now: now) }
        return tryAddresses(addresses, now: now)
    }

    mutating func resolveFailed(_ reason: String, now: NIODeadline) -> Action {
        guard phase == .resolving else { return .wait }
        return refuse(.badGateway, "cannot resolve target: \(reason)", now: now)
    }

    /// The attempt `.connect` asked for succeeded. Anything but a relay (`.relay`, `.answer … then: .relay`)
    /// means the connection is not wanted any more: close it.
    mutating func connected() -> Action {
        guard phase == .connecting else { return .wait }
        phase = .relaying
        deadline = nil
        candidates = []
        var toTarget = buffer
        buffer = []
        switch kind {
        case .connect:
            return .answer(
                Answer(status: .established, bytes: Self.established, outcome: nil),
                then: .relay(Relay(toTarget: toTarget, clientInputClosed: clientInputClosed)))
        case .forward(let originFormHead):
            toTarget.insert(contentsOf: originFormHead.utf8, at: 0)
            return .relay(Relay(toTarget: toTarget, clientInputClosed: clientInputClosed))
        case nil:
            return .relay(Relay(toTarget: toTarget, clientInputClosed: clientInputClosed))
        }
    }

    /// The attempt `.connect` asked for failed: the next address, or the answer.
    mutating func connectFailed(_ failure: ConnectFailure, now: NIODeadline) -> Action {
        guard phase == .connecting else { return .wait }
        if let deadline, now >= deadline {
            return refuse(.gatewayTimeout, ConnectFailure.timedOut.detail, now: now)
        }
        if let next = candidates.popFirst() { return .connect(next) }
        return refuse(failure == .timedOut ? .gatewayTimeout : .badGateway, failure.detail, now: now)
    }

    /// A timer armed for `deadline` fired. (Early or stale calls change nothing.)
    mutating func timerFired(now: NIODeadline) -> Action {
        guard let deadline, now >= deadline else { return .wait }
        switch phase {
        case .head:
            return refuse(.requestTimeout, "request head not received in time", now: now)
        case .resolving:
            return refuse(.gatewayTimeout, "resolving \(host) timed out", now: now)
        case .connecting:
            return refuse(.gatewayTimeout, ConnectFailure.timedOut.detail, now: now)
        case .answering:
            return finish(nil)
        case .idle, .relaying, .closed:
            return .wait
        }
    }

    // MARK: steps

    private mutating func examineHead(addedFrom old: Int, now: NIODeadline) -> Action {
        // Only the new bytes are searched, so a head sent a byte at a time costs linear time, not quadratic.
        if let end = ProxyRequestHeadParser.endOfHead(buffer, from: old - 2) {
            switch ProxyRequestHeadParser.parse(buffer[..<end], allowForwarding: settings.forwardPlainHTTP) {
            case .complete(let head, let headLength):
                buffer.removeFirst(headLength)
                return headComplete(head, now: now)
            case .rejected(let status, let detail):
                return refuse(status, detail, now: now)
            case .incomplete:
                return refuse(.badRequest, "malformed request head", now: now)  // not reached: the head ends at `end`
            }
        }
        if buffer.count >= ProxyRequestHeadParser.maximumHeadSize {
            return refuse(.badRequest, "request head too large", now: now)
        }
        // A request line that is already complete and malformed need not wait for the rest.
        if !requestLineChecked, let lineEnd = buffer[old...].firstIndex(of: UInt8(ascii: "\n")) {
            requestLineChecked = true
            if case .rejected(let status, let detail) = ProxyRequestHeadParser.parse(
                buffer[...lineEnd], allowForwarding: settings.forwardPlainHTTP)
            {
                return refuse(status, detail, now: now)
            }
        }
        return .read
    }

    private mutating func headComplete(_ head: ProxyRequestHead, now: NIODeadline) -> Action {
        target = head.target.description
        kind = head.kind
        if let (status, detail) = settings.refusal(for: head) { return refuse(status, detail, now: now) }
        return beginConnecting(to: head.target, addresses: nil, now: now)
    }

    /// `connect_timeout` covers resolving and connecting, over every address.
    private mutating func beginConnecting(to destination: TargetAddress, addresses: [SocketAddress]?, now: NIODeadline) -> Action {
        deadline = now + settings.connectTimeout
        host = destination.host
        if let addresses { return tryAddresses(addresses, now: now) }
        if IPAddress(destination.host) != nil,
            let literal = try? SocketAddress(ipAddress: destination.host, port: destination.port)
        {
            return tryAddresses([literal], now: now)
        }
        phase = .resolving
        return .resolve(host: destination.host, port: destination.port)
    }

    private mutating func tryAddresses(_ all: [SocketAddress], now: NIODeadline) -> Action {
        guard !all.isEmpty else { return refuse(.badGateway, "cannot resolve target: no addresses", now: now) }
        // tcp mode's fixed destination is the operator's choice; requested targets obey denied_networks.
        let denied = settings.deniedNetworks
        let allowed = kind == nil ? all : all.filter { !Self.isDenied($0, by: denied) }
        guard let first = allowed.first else { return refuse(.forbidden, "target network not allowed", now: now) }
        phase = .connecting
        candidates = allowed.dropFirst()
        return .connect(first)
    }

    /// The refusal: an answer in http(s) mode, a bare close in tcp mode. The one place answers are made.
    private mutating func refuse(_ status: TunnelStatus, _ detail: String, now: NIODeadline) -> Action {
        let outcome = Outcome.refused(status, detail)
        if case .fixed = settings.target { return finish(outcome) }
        phase = .answering
        deadline = now + Settings.answerDrainTime
        buffer = []
        candidates = []
        let bytes = Array(status.response(detail: detail, realm: settings.proxyAuthorization?.realm).utf8)
        return .answer(Answer(status: status, bytes: bytes, outcome: outcome), then: clientInputClosed ? .close : .drainThenClose)
    }

    private mutating func finish(_ outcome: Outcome?) -> Action {
        phase = .closed
        deadline = nil
        buffer = []
        candidates = []
        return .close(outcome)
    }
}
