import NIOCore

/// Why a tunnel ended, as logged and counted.
public enum TunnelEndReason: String, Sendable, CaseIterable {
    /// Both sides finished sending (EOF each way).
    case completed
    case clientClosed = "client_closed"
    case targetClosed = "target_closed"
    case clientError = "client_error"
    case targetError = "target_error"
    case idleTimeout = "idle_timeout"
    case tooSlow = "too_slow"
    case maxLifetime = "max_lifetime"
    case payloadCap = "payload_cap"
    case serverShutdown = "server_shutdown"
}

/// What a finished tunnel reports.
public struct TunnelSummary: Sendable {
    public var clientToTargetBytes: UInt64
    public var targetToClientBytes: UInt64
    public var duration: Duration
    public var endReason: TunnelEndReason
}

/// Refills at `rate` bytes per second up to `capacity`; spending may go into debt, and a chunk is released
/// once its debt has been paid back, so at most `capacity + rate × t` bytes pass in any time `t`.
struct TokenBucket {
    let rate: Double
    let capacity: Double
    private var tokens: Double
    private var updated: NIODeadline

    init(bytesPerSecond: UInt64, now: NIODeadline) {
        rate = Double(bytesPerSecond)
        // A tenth of a second of burst, at least one typical segment.
        capacity = max(Double(bytesPerSecond) / 10, 1500)
        tokens = capacity
        updated = now
    }

    /// Spends `count` bytes and returns when they may be sent.
    mutating func spend(_ count: Int, now: NIODeadline) -> NIODeadline {
        let elapsed = Double((now - updated).nanoseconds) / 1e9
        tokens = min(capacity, tokens + elapsed * rate)
        updated = now
        tokens -= Double(count)
        if tokens >= 0 { return now }
        return now + .nanoseconds(Int64(-tokens / rate * 1e9))
    }
}

/// The rules of one direction applied to each chunk read from its source: the payload cap, the minimum
/// rate and the throttle. Both engines (NIO's `TunnelRelay` and the epoll engine) account through it.
struct FlowAccounting {
    let policy: RelayPolicy
    /// Bytes admitted so far.
    private(set) var bytes: UInt64 = 0
    private var throttle: TokenBucket?

    /// What happens to a chunk.
    struct Verdict {
        /// How many of its bytes may pass (fewer than read once the payload cap is reached).
        var allowed: Int
        /// The payload cap is reached: relay `allowed` bytes, then end the tunnel.
        var capped: Bool
        /// The direction averages less than its minimum rate: end the tunnel.
        var tooSlow: Bool
        /// When the throttle lets the bytes go (`now` when they may go at once).
        var releaseAt: NIODeadline
    }

    init(policy: RelayPolicy, now: NIODeadline) {
        self.policy = policy
        throttle = policy.maxRateBytesPerSecond.map { TokenBucket(bytesPerSecond: $0, now: now) }
    }

    /// Accounts for `count` bytes read at `now` from a tunnel established at `started`.
    mutating func admit(_ count: Int, now: NIODeadline, started: NIODeadline) -> Verdict {
        var allowed = count
        var capped = false
        if let cap = policy.maxTotalPayload, bytes + UInt64(count) >= cap {
            allowed = Int(cap - min(cap, bytes))
            capped = true
        }
        bytes += UInt64(allowed)
        var tooSlow = false
        let minRate = policy.minRateBytesPerMinute
        if minRate > 0 {
            let elapsed = now - started
            if elapsed >= TimeAmount(policy.minRateGracePeriod), elapsed.nanoseconds > 0 {
                tooSlow = Double(bytes) * 60e9 / Double(elapsed.nanoseconds) < Double(minRate)
            }
        }
        let releaseAt = throttle != nil ? throttle!.spend(allowed, now: now) : now
        return Verdict(allowed: allowed, capped: capped, tooSlow: tooSlow, releaseAt: releaseAt)
    }
}

extension RelayPolicy {
    /// The limits of a whole tunnel: the smaller of the two directions' idle timeouts and lifetimes.
    static func tunnelLimits(client: RelayPolicy, target: RelayPolicy) -> (idle: TimeAmount?, lifetime: TimeAmount?) {
        func smaller(_ a: Duration?, _ b: Duration?) -> TimeAmount? {
            [a, b].compactMap { $0 }.min().map(TimeAmount.init)
        }
        return (smaller(client.idleTimeout, target.idleTimeout), smaller(client.maxLifetime, target.maxLifetime))
    }
}

/// Which end of a tunnel.
enum TunnelSide {
    case client
    case target
}

/// The relay between a client channel and a target channel. Both channels live on the same event loop and
/// every method runs on it. Reads are issued by hand (autoRead is off): a side is read only while the other
/// side is writable and its throttle allows, so nothing is buffered without bound.
final class TunnelRelay {
    private struct Direction {
        var accounting: FlowAccounting
        /// The source sent EOF; the destination's output is (being) shut.
        var ended = false
        /// Chunks waiting for their throttle deadline, oldest first.
        var held: [(buffer: ByteBuffer, releaseAt: NIODeadline)] = []
        var releaseTask: Scheduled<Void>?
    }

    let eventLoop: any EventLoop
    let client: any Channel
    let target: any Channel
    private var clientToTarget: Direction
    private var targetToClient: Direction
    private let started: NIODeadline
    private var lastActivity: NIODeadline
    private let idleTimeout: TimeAmount?
    private var idleTask: Scheduled<Void>?
    private var lifetimeTask: Scheduled<Void>?
    private var drainTask: Scheduled<Void>?
    private var endReason: TunnelEndReason?
    private var clientOpen = true
    private var targetOpen = true
    private var reported = false
    /// Called once with the summary; dropped afterwards (it captures the client handler, which holds this relay).
    private var onFinish: ((TunnelSummary) -> Void)?
    /// Called when this relay is freed (the server counts relays alive, which tests use to catch leaks).
    var onDeinit: (() -> Void)?

    deinit {
        onDeinit?()
    }

    init(
        client: any Channel, target: any Channel, clientPolicy: RelayPolicy, targetPolicy: RelayPolicy,
        onFinish: @escaping (TunnelSummary) -> Void
    ) {
        self.eventLoop = client.eventLoop
        self.client = client
        self.target = target
        let now = NIODeadline.now()
        started = now
        lastActivity = now
        clientToTarget = Direction(accounting: FlowAccounting(policy: clientPolicy, now: now))
        targetToClient = Direction(accounting: FlowAccounting(policy: targetPolicy, now: now))
        let limits = RelayPolicy.tunnelLimits(client: clientPolicy, target: targetPolicy)
        idleTimeout = limits.idle
        self.onFinish = onFinish
        if let lifetime = limits.lifetime {
            lifetimeTask = eventLoop.assumeIsolated().scheduleTask(in: lifetime) { [self] in
                abort(.maxLifetime)
            }
        }
        if let idleTimeout { scheduleIdleCheck(at: now + idleTimeout) }
    }

    /// Sends bytes the client sent before the tunnel was up, then starts reading both sides.
    func start(initialBytesToTarget: ByteBuffer?) {
        if let initialBytesToTarget, initialBytesToTarget.readableBytes > 0 {
            received(initialBytesToTarget, from: .client)
            readComplete(from: .client)
        } else {
            requestRead(from: .client)
        }
        requestRead(from: .target)
    }

    // MARK: events from the handlers

    func received(_ buffer: ByteBuffer, from side: TunnelSide) {
        guard endReason == nil else { return }
        let now = NIODeadline.now()
        lastActivity = now
        let destination = channel(opposite: side)
        // Decide inside the exclusive access, act (write, which may re-enter the relay) outside it.
        let (verdict, writeNow) = withDirection(from: side) { direction -> (FlowAccounting.Verdict, Bool) in
            let verdict = direction.accounting.admit(buffer.readableBytes, now: now, started: started)
            if verdict.releaseAt > now || !direction.held.isEmpty {
                let slice = buffer.getSlice(at: buffer.readerIndex, length: verdict.allowed) ?? ByteBuffer()
                direction.held.append((slice, verdict.releaseAt))
                return (verdict, false)
            }
            return (verdict, true)
        }
        // Flushed at once rather than at readComplete: the peer starts draining while the next read happens.
        if writeNow {
            let slice = verdict.allowed == buffer.readableBytes
                ? buffer : buffer.getSlice(at: buffer.readerIndex, length: verdict.allowed) ?? ByteBuffer()
            destination.writeAndFlush(slice, promise: nil)
        }
        if verdict.capped {
            destination.flush()
            finish(.payloadCap, graceful: true)
        } else if verdict.tooSlow {
            abort(.tooSlow)
        }
    }

    func readComplete(from side: TunnelSide) {
        guard endReason == nil else { return }
        channel(opposite: side).flush()
        scheduleRelease(from: side)
        requestRead(from: side)
    }

    func writabilityChanged(of side: TunnelSide) {
        // The side that became writable is the destination of the opposite direction.
        let source: TunnelSide = side == .client ? .target : .client
        requestRead(from: source)
    }

    func inputClosed(on side: TunnelSide) {
        guard endReason == nil else { return }
        var alreadyEnded = false
        withDirection(from: side) { direction in
            alreadyEnded = direction.ended
            direction.ended = true
        }
        guard !alreadyEnded else { return }
        if heldIsEmpty(from: side) { shutDownOutput(toward: side) }
        if clientToTarget.ended && targetToClient.ended {
            finish(.completed, graceful: true)
        }
    }

    func channelInactive(_ side: TunnelSide) {
        switch side {
        case .client: clientOpen = false
        case .target: targetOpen = false
        }
        if endReason == nil {
            finish(side == .client ? .clientClosed : .targetClosed, graceful: true)
        }
        if !clientOpen && !targetOpen {
            idleTask?.cancel()
            lifetimeTask?.cancel()
            drainTask?.cancel()
            clientToTarget.releaseTask?.cancel()
            targetToClient.releaseTask?.cancel()
        }
    }

    func errorCaught(on side: TunnelSide) {
        abort(side == .client ? .clientError : .targetError)
    }

    /// Closes both sides at once (pending bytes dropped).
    func abort(_ reason: TunnelEndReason) {
        if endReason == nil { endReason = reason; report() }
        client.close(promise: nil)
        target.close(promise: nil)
    }

    // MARK: internals

    /// Ends the tunnel; a graceful end first lets each side's pending writes drain.
    private func finish(_ reason: TunnelEndReason, graceful: Bool) {
        guard endReason == nil else { return }
        endReason = reason
        report()
        guard graceful else {
            abort(reason)
            return
        }
        for channel in [client, target] {
            // An empty write completes after every write queued before it.
            channel.writeAndFlush(ByteBuffer()).assumeIsolated().whenComplete { _ in
                channel.close(promise: nil)
            }
        }
        // A peer that stopped reading would keep its writes pending forever; the idle timer (or, with
        // no idle timeout, this fallback) closes it.
        if idleTimeout == nil {
            drainTask = eventLoop.assumeIsolated().scheduleTask(in: .seconds(30)) { [self] in
                client.close(promise: nil)
                target.close(promise: nil)
            }
        }
    }

    private func report() {
        guard !reported, let endReason else { return }
        reported = true
        let elapsed = NIODeadline.now() - started
        let onFinish = self.onFinish
        self.onFinish = nil
        onFinish?(
            TunnelSummary(
                clientToTargetBytes: clientToTarget.accounting.bytes, targetToClientBytes: targetToClient.accounting.bytes,
                duration: .nanoseconds(elapsed.nanoseconds), endReason: endReason))
    }

    private func channel(opposite side: TunnelSide) -> any Channel {
        side == .client ? target : client
    }

    private func channel(_ side: TunnelSide) -> any Channel {
        side == .client ? client : target
    }

    private func withDirection<R>(from side: TunnelSide, _ body: (inout Direction) -> R) -> R {
        switch side {
        case .client: body(&clientToTarget)
        case .target: body(&targetToClient)
        }
    }

    private func heldIsEmpty(from side: TunnelSide) -> Bool {
        side == .client ? clientToTarget.held.isEmpty : targetToClient.held.isEmpty
    }

    /// EOF from `side`: shut the opposite channel's output once its queued writes are out.
    private func shutDownOutput(toward side: TunnelSide) {
        let destination = channel(opposite: side)
        destination.writeAndFlush(ByteBuffer()).assumeIsolated().whenComplete { _ in
            destination.close(mode: .output, promise: nil)
        }
    }

    private func requestRead(from side: TunnelSide) {
        guard endReason == nil else { return }
        let source = channel(side)
        let destination = channel(opposite: side)
        let allowed = withDirection(from: side) { !$0.ended && $0.held.isEmpty }
        if allowed && destination.isWritable && source.isActive {
            source.read()
        }
    }

    /// Writes every held chunk whose release time has come and schedules the next release.
    private func scheduleRelease(from side: TunnelSide) {
        let destination = channel(opposite: side)
        let now = NIODeadline.now()
        var next: NIODeadline?
        let ready = withDirection(from: side) { direction -> [ByteBuffer] in
            var ready: [ByteBuffer] = []
            while let first = direction.held.first, first.releaseAt <= now {
                ready.append(first.buffer)
                direction.held.removeFirst()
            }
            next = direction.held.first?.releaseAt
            return ready
        }
        let wrote = !ready.isEmpty
        for buffer in ready { destination.write(buffer, promise: nil) }
        if wrote { destination.flush() }
        if let next {
            let alreadyScheduled = withDirection(from: side) { $0.releaseTask != nil }
            if !alreadyScheduled {
                let task = eventLoop.assumeIsolated().scheduleTask(deadline: next) { [self] in
                    withDirection(from: side) { $0.releaseTask = nil }
                    guard endReason == nil else { return }
                    scheduleRelease(from: side)
                    requestRead(from: side)
                }
                withDirection(from: side) { $0.releaseTask = task }
            }
        } else if withDirection(from: side, { $0.ended }) && wrote {
            shutDownOutput(toward: side)
        }
    }

    private func scheduleIdleCheck(at deadline: NIODeadline) {
        idleTask = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard let idleTimeout else { return }
            if !clientOpen && !targetOpen { return }
            let due = lastActivity + idleTimeout
            if due <= NIODeadline.now() {
                abort(endReason == nil ? .idleTimeout : endReason!)
            } else {
                scheduleIdleCheck(at: due)
            }
        }
    }
}
