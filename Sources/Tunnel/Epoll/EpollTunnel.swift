import TextFormats
import Synchronization
#if os(Linux)
import CTunnelLinux
import Glibc
import NIOCore

/// One client connection of the epoll engine, from the request head to the end of its relay. The same
/// rules as the NIO engine's `ProxyConnectionHandler` + `TunnelRelay`: the handshake (checks, timeouts,
/// answers) is `TunnelHandshake`, the log line comes from `TunnelServerContext`, the per-direction policies
/// from `FlowAccounting`.
///
/// Sockets are edge-triggered: an event sets `readable`/`writable`, which stay set until a call returns
/// EAGAIN (or a short read, unless the peer has shut its side, which still has an EOF to read).
final class EpollTunnel {
    private enum Phase {
        /// `handshake` has the connection (its phase says which step).
        case handshake
        case relaying
        case closed
    }

    /// One socket of the tunnel.
    private struct End {
        var fd: Int32 = -1
        var readable = false
        var writable = false
        /// The peer shut its sending side (or the socket failed): keep reading until EOF or an error.
        var hangUp = false
        /// The peer's FIN has arrived (EPOLLRDHUP without an error): every byte it sent is already queued
        /// in the socket, so a read that returns less than it asked for has emptied it and EOF is next.
        var finReceived = false
        /// Close this socket as soon as the bytes queued for it are written.
        var closeWhenFlushed = false
        var isOpen: Bool { fd >= 0 }
    }

    /// One direction of the relay: the bytes read from its source on their way to its destination.
    private struct Flow {
        var accounting: FlowAccounting
        /// Read and admitted but not yet accepted by the destination socket.
        var pending: [UInt8] = []
        var pendingOffset = 0
        /// Chunks the throttle holds back, oldest first.
        var held: [(bytes: [UInt8], releaseAt: NIODeadline)] = []
        /// The source sent EOF.
        var sourceEnded = false
        /// The destination's output was shut after the EOF.
        var outputShut = false
        var hasPending: Bool { pendingOffset < pending.count }
        /// The source has ended and the throttle holds nothing back: the bytes written now are the last.
        var nothingFollows: Bool { sourceEnded && held.isEmpty }
    }

    private enum Direction {
        /// client → target
        case up
        /// target → client
        case down
        var source: TunnelSide { self == .up ? .client : .target }
    }

    /// The loop owns its tunnels and outlives them (its thread runs until the last one has ended), so the
    /// reference needs no reference counting: a checked `unowned` cost a retain and a release per use.
    unowned(unsafe) let loop: EpollLoop
    let serial: UInt64
    private let server: TunnelServerContext
    private var phase = Phase.handshake
    // Only the loop's thread touches a tunnel, and no access to these overlaps another (`withEnd`/`withFlow`
    // bodies touch no other state of the same end or flow); the runtime's exclusivity check on each access
    // was about 1 % of a short tunnel's CPU.
    @exclusivity(unchecked) private var client = End()
    @exclusivity(unchecked) private var target = End()
    @exclusivity(unchecked) private var up: Flow
    @exclusivity(unchecked) private var down: Flow
    private let admitted: Bool
    private let tunnelID: UInt64
    private let accepted: NIODeadline
    private let clientAddress: SocketAddress?
    @exclusivity(unchecked) private var handshake: TunnelHandshake
    /// The error answer being sent is followed by draining the client's input (else by the close).
    private var drainAfterAnswer = true
    // Deadlines (the handshake's is `handshake.deadline`); `scheduledAt` is the earliest one already in the
    // loop's timer heap.
    private var drainDeadline: NIODeadline?
    private var lifetimeDeadline: NIODeadline?
    private var idleTimeout: TimeAmount?
    private var scheduledAt: NIODeadline?
    private var relayStarted: NIODeadline
    private var lastActivity: NIODeadline
    private var endReason: TunnelEndReason?
    private var countedAsRelay = false
    private var queuedToResume = false

    init(loop: EpollLoop, serial: UInt64, clientFD: Int32, clientAddress: SocketAddress?) {
        self.loop = loop
        self.serial = serial
        self.server = loop.context
        self.clientAddress = clientAddress
        tunnelID = UniqueID.next()
        client.fd = clientFD
        client.writable = true  // a new connection has an empty send buffer
        let now = loop.now
        accepted = now
        relayStarted = now
        lastActivity = now
        up = Flow(accounting: FlowAccounting(policy: loop.settings.clientPolicy, now: now))
        down = Flow(accounting: FlowAccounting(policy: loop.settings.targetPolicy, now: now))
        admitted = server.acquireConnectionSlot()
        handshake = TunnelHandshake(settings: loop.settings.handshake)
    }

    // MARK: events from the loop

    /// The connection was accepted and registered.
    func begin() {
        perform(handshake.start(admitted: admitted, now: loop.now))
    }

    func handle(fd: Int32, events: UInt32) {
        let input = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
        let output = EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
        let hangUp = EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
        let side: TunnelSide = fd == client.fd ? .client : .target
        withEnd(side) { end in
            if events & input != 0 { end.readable = true }
            if events & output != 0 { end.writable = true }
            if events & hangUp != 0 { end.hangUp = true }
            if events & EPOLLRDHUP.rawValue != 0 && events & EPOLLERR.rawValue == 0 { end.finReceived = true }
        }
        switch phase {
        case .handshake:
            let failed = events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
            switch handshake.phase {
            case .head:
                if side == .client { readHead() }
            case .resolving, .connecting:
                if side == .target {
                    // Output without an error condition is a completed connect; with one, SO_ERROR says why.
                    if target.writable && handshake.phase == .connecting { finishConnect(failed: failed) }
                } else if failed {
                    // Reset or gone. (A FIN alone waits in the socket, after the client's bytes, for the relay.)
                    perform(handshake.clientClosed())
                }
            case .answering:
                if side == .client { continueAnswer() }
            case .idle, .relaying, .closed:
                break
            }
        case .relaying:
            pump(.up)
            pump(.down)
        case .closed:
            break
        }
    }

    /// Work left over from a turn that reached its read budget.
    func resume() {
        queuedToResume = false
        guard phase == .relaying else { return }
        pump(.up)
        pump(.down)
    }

    func resolved(_ result: Result<[SocketAddress], any Error>) {
        guard phase == .handshake else { return }
        switch result {
        case .failure(let error):
            perform(handshake.resolveFailed("\(error)", now: loop.now))
        case .success(let all):
            perform(handshake.resolved(all, now: loop.now))
        }
    }

    /// Whether the loop's timer entry for `deadline` is this tunnel's next one (others are stale).
    func isScheduled(at deadline: NIODeadline) -> Bool {
        scheduledAt == deadline
    }

    func timerFired(scheduledFor deadline: NIODeadline) {
        guard scheduledAt == deadline else { return }  // superseded by an earlier entry that already ran
        scheduledAt = nil
        let now = loop.now
        switch phase {
        case .handshake:
            perform(handshake.timerFired(now: now))
        case .relaying:
            if endReason == nil, let lifetimeDeadline, lifetimeDeadline <= now {
                abort(.maxLifetime)
            } else if let idleTimeout, lastActivity + idleTimeout <= now {
                abort(endReason ?? .idleTimeout)
            } else if let drainDeadline, drainDeadline <= now {
                closeBoth()
            } else {
                release(.up, now: now)
                release(.down, now: now)
            }
        case .closed:
            return
        }
        reschedule()
    }

    // MARK: the handshake

    private func readHead() {
        let limit = ProxyRequestHeadParser.maximumHeadSize + 1
        while client.readable, phase == .handshake, handshake.phase == .head {
            // No more than the head may need: what follows it stays in the socket for the relay.
            let room = min(loop.scratch.count, max(limit - handshake.bufferedHeadBytes, 1))
            let count = Glibc.read(client.fd, loop.scratch.baseAddress, room)
            if count > 0 {
                if count < room && !client.hangUp { client.readable = false }
                perform(handshake.bytesReceived(UnsafeRawBufferPointer(start: loop.scratch.baseAddress, count: count), now: loop.now))
            } else if count == 0 {
                client.readable = false
                perform(handshake.clientClosedInput(now: loop.now))
            } else if errno == EAGAIN {
                client.readable = false
            } else if errno != EINTR {
                perform(handshake.clientClosed())
            }
        }
    }

    /// Does what the handshake says (attempts that fail at once go straight back to it).
    private func perform(_ first: TunnelHandshake.Action) {
        var action = first
        while case .connect(let address) = action {
            guard let failure = startConnect(to: address) else {
                reschedule()
                return
            }
            action = handshake.connectFailed(failure, now: loop.now)
        }
        switch action {
        case .read, .wait, .connect:
            break  // the head and an answered connection's input are read as the client's events come
        case .resolve(let host, let port):
            let loop = self.loop
            let serial = self.serial
            server.resolver.resolve(host: host, port: port, on: loop.resolverLoop)
                .whenComplete { result in loop.post(.resolved(serial: serial, result)) }
        case .answer(let answer, then: .relay(let relay)):
            startRelay(answer: answer.bytes, relay)
        case .relay(let relay):
            startRelay(answer: nil, relay)
        case .answer(let answer, let then):
            respond(answer, drain: then == .drainThenClose)
        case .close(let outcome):
            if let outcome { log(outcome) }
            closeBoth()
        }
        reschedule()
    }

    /// Starts a non-blocking connect; the failure when it fails at once.
    private func startConnect(to address: SocketAddress) -> TunnelHandshake.ConnectFailure? {
        if target.isOpen {
            loop.closeSocket(target.fd)
            target = End()
        }
        let family = address.protocol.rawValue
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return TunnelHandshake.ConnectFailure(errno: errno) }
        EpollLoop.setNoDelay(fd)
        let result = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if result == 0 || errno == EINPROGRESS {
            target = End()
            target.fd = fd
            loop.watch(fd, for: self)
            return nil  // the socket turns writable once the connect has an outcome
        }
        let code = errno
        Glibc.close(fd)
        return TunnelHandshake.ConnectFailure(errno: code)
    }

    private func finishConnect(failed: Bool) {
        let error = failed ? ctunnel_socket_error(target.fd) : 0
        if error == EINPROGRESS || error == EALREADY {
            target.writable = false
            return
        }
        guard error == 0 || !failed else {
            loop.closeSocket(target.fd)
            target = End()
            perform(handshake.connectFailed(TunnelHandshake.ConnectFailure(errno: error), now: loop.now))
            return
        }
        perform(handshake.connected())
    }

    // MARK: relaying

    /// `start.clientInputClosed` needs nothing here: the client's EOF waits in its socket for the relay.
    private func startRelay(answer: [UInt8]?, _ start: TunnelHandshake.Relay) {
        phase = .relaying
        let now = loop.now
        relayStarted = now
        lastActivity = now
        let settings = loop.settings
        up = Flow(accounting: FlowAccounting(policy: settings.clientPolicy, now: now))
        down = Flow(accounting: FlowAccounting(policy: settings.targetPolicy, now: now))
        idleTimeout = settings.idleTimeout
        lifetimeDeadline = settings.maxLifetime.map { now + $0 }
        countedAsRelay = true
        server.liveRelays.withLock { $0 += 1 }
        if let answer { down.pending = answer }
        if !start.toTarget.isEmpty {
            start.toTarget.withUnsafeBytes { deliver($0, along: .up) }
        }
        reschedule()
        pump(.down)
        pump(.up)
    }

    /// Moves bytes along one direction until a socket would block, the source ends or the turn's budget is spent.
    private func pump(_ direction: Direction) {
        let source = direction.source
        let destination: TunnelSide = source == .client ? .target : .client
        var reads = 0
        while phase == .relaying {
            if withFlow(direction, { $0.hasPending }) {
                guard end(destination).writable, end(destination).isOpen else { return }
                if !flushPending(direction, to: destination, last: withFlow(direction) { $0.nothingFollows }) { return }
            }
            if end(destination).closeWhenFlushed {
                closeEnd(destination)
                return
            }
            if !withFlow(direction, { $0.held.isEmpty }) { return }
            if withFlow(direction, { $0.sourceEnded }) {
                if !withFlow(direction, { $0.outputShut }) {
                    withFlow(direction) { $0.outputShut = true }
                    if up.sourceEnded && down.sourceEnded {
                        finish(.completed)  // closing the socket sends its FIN: no shutdown first
                    } else if end(destination).isOpen {
                        _ = shutdown(end(destination).fd, Int32(SHUT_WR))
                    }
                }
                return
            }
            guard endReason == nil, end(source).isOpen, end(source).readable else { return }
            if reads == 16 {
                if !queuedToResume {
                    queuedToResume = true
                    loop.runLater(self)
                }
                return
            }
            reads += 1
            let scratch = loop.scratch
            let count = Glibc.read(end(source).fd, scratch.baseAddress, scratch.count)
            if count > 0 {
                if count < scratch.count {
                    // Emptied after the FIN: the EOF is known without reading it, and the bytes go out with
                    // MSG_MORE so that the shutdown below sends its FIN in the same segment as them.
                    let finished = end(source).finReceived
                    if finished { withFlow(direction) { $0.sourceEnded = true } }
                    if finished || !end(source).hangUp { withEnd(source) { $0.readable = false } }
                }
                deliver(UnsafeRawBufferPointer(start: scratch.baseAddress, count: count), along: direction)
            } else if count == 0 {
                withEnd(source) { $0.readable = false }
                withFlow(direction) { $0.sourceEnded = true }
                lastActivity = loop.now
            } else if errno == EAGAIN {
                withEnd(source) { $0.readable = false }
            } else if errno != EINTR {
                abort(source == .client ? .clientError : .targetError)
            }
        }
    }

    /// Admits bytes read from a direction's source and writes them (or holds them for the throttle).
    private func deliver(_ bytes: UnsafeRawBufferPointer, along direction: Direction) {
        let now = loop.now
        lastActivity = now
        let destination: TunnelSide = direction.source == .client ? .target : .client
        let verdict = withFlow(direction) { $0.accounting.admit(bytes.count, now: now, started: relayStarted) }
        let admitted = UnsafeRawBufferPointer(rebasing: bytes[..<verdict.allowed])
        if verdict.releaseAt > now || !withFlow(direction, { $0.held.isEmpty }) {
            withFlow(direction) { $0.held.append((Array(admitted), verdict.releaseAt)) }
            reschedule()
        } else if !admitted.isEmpty {
            write(admitted, along: direction, to: destination)
        }
        if verdict.capped {
            finish(.payloadCap)
        } else if verdict.tooSlow {
            abort(.tooSlow)
        }
    }

    /// Writes at once when nothing is queued ahead; whatever the socket does not take is queued.
    private func write(_ bytes: UnsafeRawBufferPointer, along direction: Direction, to destination: TunnelSide) {
        var written = 0
        if !withFlow(direction, { $0.hasPending }), end(destination).writable, end(destination).isOpen {
            let flags = Self.sendFlags(last: withFlow(direction) { $0.nothingFollows })
            let result = Glibc.send(end(destination).fd, bytes.baseAddress, bytes.count, flags)
            if result >= 0 {
                written = result
                if written < bytes.count { withEnd(destination) { $0.writable = false } }
            } else if errno == EAGAIN {
                withEnd(destination) { $0.writable = false }
            } else {
                abort(destination == .client ? .clientClosed : .targetClosed)
                return
            }
        }
        if written < bytes.count {
            withFlow(direction) { flow in
                if flow.pendingOffset > 0 && flow.pendingOffset == flow.pending.count {
                    flow.pending.removeAll(keepingCapacity: true)
                    flow.pendingOffset = 0
                }
                flow.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[written...]))
            }
        }
    }

    /// Writes queued bytes; false while some remain (the socket is full) or the tunnel ended. `last`: a
    /// shutdown or close of the destination follows once they are written (see `sendFlags`).
    private func flushPending(_ direction: Direction, to destination: TunnelSide, last: Bool) -> Bool {
        let fd = end(destination).fd
        let flags = Self.sendFlags(last: last)
        let result = withFlow(direction) { flow -> Int in
            flow.pending.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + flow.pendingOffset, flow.pending.count - flow.pendingOffset, flags)
            }
        }
        if result < 0 {
            if errno == EAGAIN || errno == EINTR {
                withEnd(destination) { $0.writable = false }
            } else {
                abort(destination == .client ? .clientClosed : .targetClosed)
            }
            return false
        }
        let done = withFlow(direction) { flow -> Bool in
            flow.pendingOffset += result
            guard flow.pendingOffset == flow.pending.count else { return false }
            flow.pending = []
            flow.pendingOffset = 0
            return true
        }
        if !done { withEnd(destination) { $0.writable = false } }
        return done
    }

    /// Queues every held chunk whose time has come, then lets the direction move on.
    private func release(_ direction: Direction, now: NIODeadline) {
        var released = false
        withFlow(direction) { flow in
            var ready = 0
            for chunk in flow.held {
                if chunk.releaseAt > now { break }
                if flow.pendingOffset > 0 && flow.pendingOffset == flow.pending.count {
                    flow.pending.removeAll(keepingCapacity: true)
                    flow.pendingOffset = 0
                }
                flow.pending.append(contentsOf: chunk.bytes)
                ready += 1
            }
            if ready > 0 {
                flow.held.removeFirst(ready)
                released = true
            }
        }
        if released { pump(direction) }
    }

    // MARK: ending

    /// Ends the tunnel; each side is closed once the bytes queued for it are written.
    private func finish(_ reason: TunnelEndReason) {
        guard endReason == nil else { return }
        endReason = reason
        report()
        up.held = []
        down.held = []
        // A peer that stopped reading would keep its bytes queued forever; the idle timer (or, with no
        // idle timeout, this fallback) closes it.
        if idleTimeout == nil { drainDeadline = loop.now + .seconds(30) }
        if up.hasPending { target.closeWhenFlushed = true } else { closeEnd(.target) }
        if down.hasPending { client.closeWhenFlushed = true } else { closeEnd(.client) }
        reschedule()
    }

    /// Closes both sides at once (queued bytes dropped).
    private func abort(_ reason: TunnelEndReason) {
        if endReason == nil {
            endReason = reason
            report()
        }
        closeBoth()
    }

    private func report() {
        guard countedAsRelay, let endReason else { return }
        let elapsed = loop.now - relayStarted
        log(
            result: "ok",
            summary: TunnelSummary(
                clientToTargetBytes: up.accounting.bytes, targetToClientBytes: down.accounting.bytes,
                duration: .nanoseconds(elapsed.nanoseconds), endReason: endReason))
    }

    private func closeBoth() {
        closeEnd(.target)
        closeEnd(.client)
    }

    private func closeEnd(_ side: TunnelSide) {
        let fd = end(side).fd
        guard fd >= 0 else { return }
        loop.closeSocket(fd)
        withEnd(side) { $0 = End() }
        if side == .client && admitted { server.releaseConnectionSlot() }
        if !client.isOpen && !target.isOpen {
            phase = .closed
            loop.forget(serial)
            if countedAsRelay { server.liveRelays.withLock { $0 -= 1 } }
        }
    }

    // MARK: error answers

    private func respond(_ answer: TunnelHandshake.Answer, drain: Bool) {
        if target.isOpen {
            loop.closeSocket(target.fd)
            target = End()
        }
        if let outcome = answer.outcome { log(outcome) }
        drainAfterAnswer = drain
        down = Flow(accounting: down.accounting)
        down.pending = answer.bytes
        continueAnswer()
    }

    /// Writes the answer, then shuts the output and drains the client's input (or closes, when it has ended).
    private func continueAnswer() {
        if down.hasPending {
            guard client.writable, flushPending(.down, to: .client, last: true) else { return }
            guard drainAfterAnswer else {
                closeBoth()
                return
            }
            _ = shutdown(client.fd, Int32(SHUT_WR))
        }
        while client.isOpen && client.readable {
            let count = Glibc.read(client.fd, loop.scratch.baseAddress, loop.scratch.count)
            if count == 0 {
                client.readable = false
                perform(handshake.clientClosedInput(now: loop.now))
            } else if count < 0 && errno == EAGAIN {
                client.readable = false
            } else if count < 0 && errno != EINTR {
                perform(handshake.clientClosed())
            }
        }
    }

    // MARK: helpers

    /// MSG_MORE on a direction's last bytes: the kernel holds the final segment back until the shutdown (or
    /// close) that always follows, which then carries the FIN in that segment instead of a packet of its own.
    /// With the EOF known without a read: 18 -> 16 TCP segments per tunnel in test c of bench/tunnel (tcp mode).
    private static func sendFlags(last: Bool) -> Int32 {
        last ? Int32(MSG_NOSIGNAL | MSG_MORE) : Int32(MSG_NOSIGNAL)
    }

    private func log(_ outcome: TunnelHandshake.Outcome) {
        log(result: outcome.result, detail: outcome.detail)
    }

    private func log(result: String, summary: TunnelSummary? = nil, detail: String? = nil) {
        server.logOutcome(
            tunnelID: tunnelID, target: handshake.target, client: clientAddress, result: result, summary: summary,
            detail: detail, started: accepted)
    }

    private func nextDeadline() -> NIODeadline? {
        var next: NIODeadline?
        func consider(_ deadline: NIODeadline?) {
            if let deadline, next == nil || deadline < next! { next = deadline }
        }
        switch phase {
        case .handshake: consider(handshake.deadline)
        case .relaying:
            consider(lifetimeDeadline)
            if let idleTimeout { consider(lastActivity + idleTimeout) }
            consider(drainDeadline)
            consider(up.held.first?.releaseAt)
            consider(down.held.first?.releaseAt)
        case .closed: break
        }
        return next
    }

    /// Puts the next deadline in the loop's heap unless an earlier entry is already there.
    private func reschedule() {
        guard let next = nextDeadline() else { return }
        if let scheduledAt, scheduledAt <= next { return }
        scheduledAt = next
        loop.schedule(serial, at: next)
    }

    private func end(_ side: TunnelSide) -> End {
        side == .client ? client : target
    }

    private func withEnd<R>(_ side: TunnelSide, _ body: (inout End) -> R) -> R {
        side == .client ? body(&client) : body(&target)
    }

    private func withFlow<R>(_ direction: Direction, _ body: (inout Flow) -> R) -> R {
        direction == .up ? body(&up) : body(&down)
    }
}
#endif
