public import Logging
import TextFormats
import Metrics
import Synchronization
public import NIOCore
public import NIOPosix
public import NIOSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the listener speaks.
public enum TunnelMode: Sendable {
    /// Plain TCP listener, HTTP CONNECT handshake.
    case http
    /// TLS-terminating listener, then the HTTP CONNECT handshake inside TLS.
    case https(NIOSSLContext)
    /// No handshake: every connection is relayed to a fixed destination.
    case tcp(destination: TargetAddress)

    var name: String {
        switch self {
        case .http: "http"
        case .https: "https"
        case .tcp: "tcp"
        }
    }
}

/// The per-server metrics (swift-metrics; exported by whatever backend the process bootstraps). Every
/// counter is created once here, so recording a tunnel costs no factory lookups.
struct TunnelMetrics: Sendable {
    let clientToTargetBytes = Counter(label: "tunnel_bytes_total", dimensions: [("direction", "client_to_target")])
    let targetToClientBytes = Counter(label: "tunnel_bytes_total", dimensions: [("direction", "target_to_client")])
    let duration = Metrics.Timer(label: "tunnel_duration_seconds", preferredDisplayUnit: .seconds)
    let active = Gauge(label: "tunnel_active_connections")
    private let requestsByResult: [String: Counter]
    private let endedByReason: [TunnelEndReason: Counter]

    /// Every value the `result` dimension takes.
    static let resultNames = TunnelHandshake.Outcome.resultNames

    init() {
        var requests: [String: Counter] = [:]
        for name in Self.resultNames {
            requests[name] = Counter(label: "tunnel_requests_total", dimensions: [("result", name)])
        }
        requestsByResult = requests
        var ended: [TunnelEndReason: Counter] = [:]
        for reason in TunnelEndReason.allCases {
            ended[reason] = Counter(label: "tunnel_ended_total", dimensions: [("reason", reason.rawValue)])
        }
        endedByReason = ended
    }

    func requests(result: String) -> Counter {
        requestsByResult[result] ?? Counter(label: "tunnel_requests_total", dimensions: [("result", result)])
    }

    func ended(reason: TunnelEndReason) -> Counter {
        endedByReason[reason]!
    }
}

/// Everything the connection handlers share. Immutable apart from the locked connection count.
final class TunnelServerContext: Sendable {
    let configuration: TunnelConfiguration
    let mode: TunnelMode
    let resolver: any TargetNameResolver
    let logger: Logger
    /// What every connection's `TunnelHandshake` reads from the configuration.
    let handshake: TunnelHandshake.Settings
    let metrics = TunnelMetrics()
    let activeConnections = Mutex(0)
    /// Who waits for the open connections to reach zero (a drain), by id; whoever removes an
    /// entry resumes it, so it is resumed once.
    private let idleWaiters = Mutex<[Int: CheckedContinuation<Void, Never>]>([:])
    private let nextWaiter = Mutex(0)
    /// Relays not yet freed; returns to zero once every tunnel has ended and been released.
    let liveRelays = Mutex(0)

    init(configuration: TunnelConfiguration, mode: TunnelMode, resolver: any TargetNameResolver, logger: Logger) {
        self.configuration = configuration
        self.mode = mode
        self.resolver = resolver
        self.logger = logger
        handshake = TunnelHandshake.Settings(configuration, mode: mode)
    }

    /// How long accepting pauses after an accept failure (EMFILE, ENFILE, ENOBUFS, ENOMEM…), as NIO's
    /// `AcceptBackoffHandler` would: the waiting connection keeps the listener readable, so retrying at once spins.
    static let acceptBackoff: TimeAmount = .seconds(1)
    /// At most one log line per this long for accept failures, across the server's loops.
    static let acceptFailureLogInterval: TimeAmount = .seconds(10)
    /// When the last accept-failure line was written, and the failures since that were not logged.
    private let acceptFailures = Mutex<(lastLogged: NIODeadline?, suppressed: Int)>((nil, 0))

    /// Any thread: an accept failed and accepting pauses for `acceptBackoff`. Logs rate-limited.
    func acceptFailed(errno code: Int32) {
        let now = NIODeadline.now()
        let suppressed = acceptFailures.withLock { state -> Int? in
            if let last = state.lastLogged, now - last < Self.acceptFailureLogInterval {
                state.suppressed += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.suppressed
        }
        guard let suppressed else { return }
        logger.warning(
            "tunnel accept failed; accepting paused",
            metadata: [
                "errno": "\(code)", "error": "\(String(cString: strerror(code)))",
                "pause_ms": "\(Self.acceptBackoff.nanoseconds / 1_000_000)",
                "suppressed": "\(suppressed)",
            ])
    }

    /// Takes a connection slot; false when the cap is reached.
    func acquireConnectionSlot() -> Bool {
        let (admitted, count) = activeConnections.withLock { count -> (Bool, Int) in
            if let cap = configuration.maxConnections, count >= cap { return (false, count) }
            count += 1
            return (true, count)
        }
        if admitted { metrics.active.record(count) }
        return admitted
    }

    /// Counts a tunnel's outcome and writes its log line (metadata is only built when info is logged).
    func logOutcome(
        tunnelID: UInt64, target: String, client: SocketAddress?, result: String, summary: TunnelSummary?,
        detail: String?, started: NIODeadline
    ) {
        metrics.requests(result: result).increment()
        if let summary {
            metrics.clientToTargetBytes.increment(by: Int64(clamping: summary.clientToTargetBytes))
            metrics.targetToClientBytes.increment(by: Int64(clamping: summary.targetToClientBytes))
            metrics.duration.record(duration: summary.duration)
            metrics.ended(reason: summary.endReason).increment()
        }
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata
        if let summary {
            metadata = [
                "tunnel_id": .string(UniqueID.hex(tunnelID)), "mode": .string(mode.name), "target": .string(target),
                "result": .string(result), "end_reason": .string(summary.endReason.rawValue),
                "client_to_target_bytes": .string(String(summary.clientToTargetBytes)),
                "target_to_client_bytes": .string(String(summary.targetToClientBytes)),
                "duration_ms": .string(String(summary.duration.milliseconds)),
            ]
        } else {
            metadata = [
                "tunnel_id": .string(UniqueID.hex(tunnelID)), "mode": .string(mode.name), "target": .string(target),
                "result": .string(result),
                "duration_ms": .string(String((NIODeadline.now() - started).nanoseconds / 1_000_000)),
            ]
        }
        if let detail { metadata["detail"] = .string(detail) }
        if configuration.logClientAddress, let client {
            metadata["client"] = "\(client)"
        }
        logger.info("tunnel", metadata: metadata)
    }

    func releaseConnectionSlot() {
        let count = activeConnections.withLock { count -> Int in
            count -= 1
            return count
        }
        metrics.active.record(count)
        if count == 0 {
            for waiter in idleWaiters.withLock({ waiters in defer { waiters = [:] }; return waiters.values }) { waiter.resume() }
        }
    }

    /// Resumes every drain waiter (the drain gave up waiting).
    func releaseWaitersForShutdown() {
        for waiter in idleWaiters.withLock({ waiters in defer { waiters = [:] }; return waiters.values }) { waiter.resume() }
    }

    /// Returns once no connection is open (at once when none is).
    func waitUntilNoConnections() async {
        let id = nextWaiter.withLock { n in defer { n += 1 }; return n }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            idleWaiters.withLock { $0[id] = continuation }
            // The last connection may have ended before the entry was there.
            if activeConnections.withLock({ $0 }) == 0, let mine = idleWaiters.withLock({ $0.removeValue(forKey: id) }) {
                mine.resume()
            }
        }
    }
}

/// Which implementation carries the tunnels.
public enum TunnelEngine: String, Sendable, CaseIterable {
    /// epoll for `http` and `tcp` on Linux, NIO otherwise (TLS always runs on NIO).
    case automatic
    /// Linux only: a loop per thread on edge-triggered epoll (`Epoll/`), for `http` and `tcp`.
    case epoll
    /// SwiftNIO channels (`ProxyConnectionHandler`, `TunnelRelay`).
    case nio
}

/// A running tunnel listener.
public final class TunnelServer: Sendable {
    private enum Listener: Sendable {
        case nio(any Channel)
        #if os(Linux)
        case epoll(EpollEngine)
        #endif
    }

    private let listener: Listener
    let context: TunnelServerContext
    /// The event loops of NIO tunnels, of name resolution and of the metrics endpoint.
    public let eventLoopGroup: any EventLoopGroup
    /// The engine actually running (never `.automatic`).
    public let engine: TunnelEngine

    /// The address actually bound (useful with port 0).
    public var localAddress: SocketAddress? {
        switch listener {
        case .nio(let channel): channel.localAddress
        #if os(Linux)
        case .epoll(let engine): engine.localAddress
        #endif
        }
    }

    /// The kernel ids of the epoll engine's loop threads (empty on the NIO engine).
    var epollThreadIDs: [Int32] {
        #if os(Linux)
        if case .epoll(let engine) = listener { return engine.loopThreadIDs }
        #endif
        return []
    }

    /// Tunnels whose relay state is still in memory (it should fall back to 0 once tunnels end).
    public var liveTunnelCount: Int { context.liveRelays.withLock { $0 } }

    /// Number of client connections currently open.
    public var activeConnectionCount: Int { context.activeConnections.withLock { $0 } }

    private init(listener: Listener, context: TunnelServerContext, group: any EventLoopGroup, engine: TunnelEngine) {
        self.listener = listener
        self.context = context
        self.eventLoopGroup = group
        self.engine = engine
    }

    /// A side stops being read while the other side has more than `high` bytes queued, and is read again below `low`.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 * 1024, high: 512 * 1024)

    /// Starts with `threads` tunnel threads (default: one per core). The epoll engine gets a one-thread NIO
    /// group of its own for name resolution and metrics; the NIO engine runs on a group of `threads` loops.
    public static func start(
        host: String, port: Int, mode: TunnelMode, configuration: TunnelConfiguration, eventLoopThreads: Int?,
        engine: TunnelEngine = .automatic, pinThreads: Bool? = nil, logger: Logger = Logger(label: "ipquest.tunnel")
    ) async throws -> TunnelServer {
        let threads = max(1, eventLoopThreads ?? System.coreCount)
        let chosen = resolve(engine, for: mode)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: chosen == .epoll ? 1 : threads)
        return try await start(
            host: host, port: port, mode: mode, configuration: configuration, group: group, engine: chosen,
            threads: threads, pinThreads: pinThreads, logger: logger)
    }

    /// Binds the listener and starts accepting.
    /// - Parameter resolver: how target names are resolved; defaults to `getaddrinfo` behind a TTL cache.
    /// - Parameter threads: the epoll engine's loops (default: one per core); NIO tunnels run on `group`.
    /// - Parameter pinThreads: pin each epoll loop to a CPU; nil pins when there is one loop per usable CPU.
    public static func start(
        host: String,
        port: Int,
        mode: TunnelMode,
        configuration: TunnelConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        resolver: (any TargetNameResolver)? = nil,
        engine: TunnelEngine = .automatic,
        threads: Int? = nil,
        pinThreads: Bool? = nil,
        logger: Logger = Logger(label: "ipquest.tunnel")
    ) async throws -> TunnelServer {
        let resolver =
            resolver
            ?? CachingNameResolver(upstream: SystemNameResolver(), ttl: configuration.targetConnection.dnsCacheTTL)
        let context = TunnelServerContext(configuration: configuration, mode: mode, resolver: resolver, logger: logger)
        let chosen = resolve(engine, for: mode)
        #if os(Linux)
        if chosen == .epoll {
            let epoll = try EpollEngine.start(
                host: host, port: port, context: context, threads: threads ?? System.coreCount, pinThreads: pinThreads,
                group: group)
            return TunnelServer(listener: .epoll(epoll), context: context, group: group, engine: .epoll)
        }
        #endif
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(server: context))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureRelayChannel(channel)
                    let admitted = context.acquireConnectionSlot()
                    if admitted {
                        channel.closeFuture.whenComplete { _ in context.releaseConnectionSlot() }
                    }
                    if case .https(let sslContext) = mode {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ProxyConnectionHandler(server: context, admitted: admitted))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return TunnelServer(listener: .nio(channel), context: context, group: group, engine: .nio)
    }

    /// The engine `requested` means for `mode` on this platform.
    static func resolve(_ requested: TunnelEngine, for mode: TunnelMode) -> TunnelEngine {
        #if os(Linux)
        if case .https = mode { return .nio }
        return requested == .nio ? .nio : .epoll
        #else
        return .nio
        #endif
    }

    /// Options of both ends of a tunnel, set synchronously before the channel registers:
    /// the bootstraps' option lists apply each option through a chain of futures, which cost
    /// about 8 % of a short tunnel's CPU (bench/tunnel, test c).
    static func configureRelayChannel(_ channel: any Channel) throws {
        guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
        try options.setOption(.autoRead, value: false)
        try options.setOption(.allowRemoteHalfClosure, value: true)
        try options.setOption(.tcpOption(.tcp_nodelay), value: 1)
        try options.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16384, maximum: 262_144))
        try options.setOption(.maxMessagesPerRead, value: 8)
        try options.setOption(.writeBufferWaterMark, value: writeBufferWaterMark)
    }

    /// Stops accepting; open tunnels run on until they end. Closing twice (after a drain) is fine.
    public func close() async throws {
        switch listener {
        case .nio(let channel):
            do { try await channel.close() } catch ChannelError.alreadyClosed {}
        #if os(Linux)
        case .epoll(let engine): try await engine.close()
        #endif
        }
    }

    /// A graceful stop: no new connections, then waits for the open tunnels to end, at most
    /// `timeout`. True when every tunnel ended in time (the rest end with the process).
    public func drain(timeout: Duration) async -> Bool {
        try? await close()
        let context = self.context
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await context.waitUntilNoConnections()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let drained = await group.next() ?? false
            group.cancelAll()
            if !drained {
                // Wake the waiter still in the group so the group can end.
                context.releaseWaitersForShutdown()
            }
            return drained
        }
    }

    /// Completes when the listener is closed.
    public func waitUntilClosed() async throws {
        switch listener {
        case .nio(let channel): try await channel.closeFuture.get()
        #if os(Linux)
        case .epoll(let engine): try await engine.waitUntilClosed()
        #endif
        }
    }
}

/// Pauses accepting for `TunnelServerContext.acceptBackoff` after an accept failure (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM), as the epoll engine does.
///
/// Why not NIO's `AcceptBackoffHandler` (which `ServerBootstrap` adds only on its async bind): it delays the
/// next `read()`, but when the first accept of a wake-up fails the channel still counts a read as pending, so
/// the listener stays in the epoll set, level-triggered, and wakes again at once: 14,000 failed accepts a
/// second under `ulimit -n 64` (NIO 2.x, measured). Turning autoRead off takes it out of the set.
final class AcceptPauseHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let server: TunnelServerContext
    private var resumption: Scheduled<Void>?

    init(server: TunnelServerContext) {
        self.server = server
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        server.acceptFailed(errno: error.errnoCode)
        guard resumption == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        resumption = context.eventLoop.assumeIsolated().scheduleTask(in: TunnelServerContext.acceptBackoff) { [self] in
            resumption = nil
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resumption?.cancel()
        resumption = nil
        context.fireChannelInactive()
    }
}

/// The client side of one connection: drives its `TunnelHandshake` (the head, the checks, resolving and
/// connecting, the answer), then relays. Lives on the client channel's event loop, as does everything it creates.
final class ProxyConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Every event goes to the handshake.
        case handshaking
        case relaying(TunnelRelay)
        case done
    }

    private let server: TunnelServerContext
    private let admitted: Bool
    private var state = State.handshaking
    private var handshake: TunnelHandshake
    /// The task that calls `timerFired` at `timerDeadline` (the handshake's deadline when it was armed).
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private let tunnelID = UniqueID.next()
    private var clientAddress: SocketAddress?
    private let started = NIODeadline.now()

    init(server: TunnelServerContext, admitted: Bool) {
        self.server = server
        self.admitted = admitted
        handshake = TunnelHandshake(settings: server.handshake)
    }

    func channelActive(context: ChannelHandlerContext) {
        clientAddress = context.channel.remoteAddress
        let action = handshake.start(admitted: admitted, now: .now())
        if action == .read { context.read() }
        perform(action, context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        switch state {
        case .handshaking:
            perform(handshake.bytesReceived(bytes.readableBytesView, now: .now()), context: context)
        case .relaying(let relay):
            relay.received(bytes, from: .client)
        case .done:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .handshaking:
            if handshake.readsClient { context.read() }
        case .relaying(let relay):
            relay.readComplete(from: .client)
        case .done:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch state {
        case .handshaking:
            perform(handshake.clientClosedInput(now: .now()), context: context)
        case .relaying(let relay):
            relay.inputClosed(on: .client)
        case .done:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .relaying(let relay) = state { relay.writabilityChanged(of: .client) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .relaying(let relay):
            state = .done  // the relay lives on through the target handler until both sides are closed
            relay.channelInactive(.client)
        case .handshaking:
            perform(handshake.clientClosed(), context: context)
            state = .done
        case .done:
            break
        }
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .relaying(let relay):
            relay.errorCaught(on: .client)
        case .handshaking:
            perform(handshake.clientClosed(), context: context)
        case .done:
            context.close(promise: nil)
        }
    }

    // MARK: the handshake's actions

    private func perform(_ action: TunnelHandshake.Action, context: ChannelHandlerContext) {
        switch action {
        case .read, .wait:
            break  // `channelReadComplete` reads on while `handshake.readsClient`
        case .resolve(let host, let port):
            server.resolver.resolve(host: host, port: port, on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                guard case .handshaking = state else { return }
                switch result {
                case .success(let addresses):
                    perform(handshake.resolved(addresses, now: .now()), context: context)
                case .failure(let error):
                    perform(handshake.resolveFailed("\(error)", now: .now()), context: context)
                }
            }
        case .connect(let address):
            connect(to: address, context: context)
        case .answer(_, then: .relay), .relay:
            preconditionFailure("a relay starts from `connected`, with its target channel")
        case .answer(let answer, let then):
            if let outcome = answer.outcome { log(outcome) }
            let channel = context.channel
            let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: answer.bytes)))
            if then == .close {
                written.assumeIsolated().whenComplete { _ in channel.close(promise: nil) }
            } else {
                // The answer and a FIN, then the client's input is read and dropped until it ends (or the
                // deadline), so that closing with unread bytes does not reset the connection before the
                // client has read the answer.
                written.assumeIsolated().whenComplete { _ in
                    channel.close(mode: .output).assumeIsolated().whenFailure { _ in channel.close(promise: nil) }
                }
                context.read()
            }
        case .close(let outcome):
            if let outcome { log(outcome) }
            state = .done
            context.close(promise: nil)
        }
        armTimer(context: context)
    }

    /// Keeps one task scheduled for the handshake's deadline.
    private func armTimer(context: ChannelHandlerContext) {
        let deadline: NIODeadline?
        if case .handshaking = state { deadline = handshake.deadline } else { deadline = nil }
        guard deadline != timerDeadline else { return }
        timer?.cancel()
        timer = nil
        timerDeadline = deadline
        guard let deadline else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            guard case .handshaking = state else { return }
            perform(handshake.timerFired(now: .now()), context: context)
        }
    }

    private func connect(to address: SocketAddress, context: ChannelHandlerContext) {
        // The handshake's timer answers 504 at the deadline; the attempt's own timeout frees its socket then.
        let remaining = handshake.deadline.map { $0 - .now() } ?? .zero
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(max(remaining, .milliseconds(1)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try TunnelServer.configureRelayChannel(channel) }
            }
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .failure(let error):
                    guard case .handshaking = state else { return }
                    perform(handshake.connectFailed(Self.connectFailure(error), now: .now()), context: context)
                case .success(let targetChannel):
                    guard case .handshaking = state else {
                        targetChannel.close(promise: nil)
                        return
                    }
                    switch handshake.connected() {
                    case .answer(let answer, then: .relay(let relay)):
                        startRelay(targetChannel: targetChannel, answer: answer.bytes, relay, context: context)
                    case .relay(let relay):
                        startRelay(targetChannel: targetChannel, answer: nil, relay, context: context)
                    case let other:
                        targetChannel.close(promise: nil)
                        perform(other, context: context)
                    }
                    armTimer(context: context)
                }
            }
    }

    private static func connectFailure(_ error: any Error) -> TunnelHandshake.ConnectFailure {
        if let error = error as? ChannelError, case .connectTimeout = error { return .timedOut }
        if let error = error as? IOError { return TunnelHandshake.ConnectFailure(errno: error.errnoCode) }
        return .other
    }

    private func startRelay(
        targetChannel: any Channel, answer: [UInt8]?, _ start: TunnelHandshake.Relay, context: ChannelHandlerContext
    ) {
        let configuration = server.configuration
        let relay = TunnelRelay(
            client: context.channel, target: targetChannel,
            clientPolicy: configuration.clientConnection.relayPolicy,
            targetPolicy: configuration.targetConnection.relayPolicy
        ) { [self] summary in
            logOutcome(result: "ok", summary: summary)
        }
        state = .relaying(relay)
        let server = self.server
        server.liveRelays.withLock { $0 += 1 }
        relay.onDeinit = { server.liveRelays.withLock { $0 -= 1 } }
        do {
            try targetChannel.pipeline.syncOperations.addHandler(TargetRelayHandler(relay: relay))
        } catch {
            relay.abort(.targetError)
            return
        }
        if let answer {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: answer)), promise: nil)
        }
        relay.start(initialBytesToTarget: start.toTarget.isEmpty ? nil : ByteBuffer(bytes: start.toTarget))
        if start.clientInputClosed { relay.inputClosed(on: .client) }
    }

    // MARK: logging

    private func log(_ outcome: TunnelHandshake.Outcome) {
        logOutcome(result: outcome.result, summary: nil, detail: outcome.detail)
    }

    private func logOutcome(result: String, summary: TunnelSummary?, detail: String? = nil) {
        server.logOutcome(
            tunnelID: tunnelID, target: handshake.target, client: clientAddress, result: result, summary: summary,
            detail: detail, started: started)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// The target side of a tunnel: hands everything to the relay.
final class TargetRelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let relay: TunnelRelay

    init(relay: TunnelRelay) {
        self.relay = relay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.received(unwrapInboundIn(data), from: .target)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        relay.readComplete(from: .target)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            relay.inputClosed(on: .target)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay.writabilityChanged(of: .target)
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay.channelInactive(.target)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        relay.errorCaught(on: .target)
    }
}
