import Logging
#if os(Linux)
import CTunnelLinux
import Glibc
import Synchronization
import NIOCore

/// One thread of the epoll engine: its own listening socket (SO_REUSEPORT spreads new connections over
/// the loops), its own epoll set, timers and tunnels. Everything but `post` runs on the loop's thread.
///
/// Why not NIO here: a short tunnel (test c of bench/tunnel) cost 330 µs of CPU through NIO channels,
/// 44 system calls (13 of them `epoll_ctl`, from re-arming reads) and two channel pipelines. This loop
/// registers each socket once, edge-triggered, and makes about 20 calls per tunnel.
final class EpollLoop: @unchecked Sendable {
    enum Message: Sendable {
        case resolved(serial: UInt64, Result<[SocketAddress], any Error>)
        case stopAccepting
    }

    let context: TunnelServerContext
    /// Where name resolutions complete (the resolver API speaks NIO futures).
    let resolverLoop: any EventLoop
    /// The configuration values a tunnel reads, taken out once: reading them through
    /// `context.configuration` copied the whole configuration (and retained its contents) each time.
    struct Settings {
        let handshake: TunnelHandshake.Settings
        let clientPolicy: RelayPolicy
        let targetPolicy: RelayPolicy
        let idleTimeout: TimeAmount?
        let maxLifetime: TimeAmount?

        init(_ context: TunnelServerContext) {
            handshake = context.handshake
            clientPolicy = context.configuration.clientConnection.relayPolicy
            targetPolicy = context.configuration.targetConnection.relayPolicy
            (idleTimeout, maxLifetime) = RelayPolicy.tunnelLimits(client: clientPolicy, target: targetPolicy)
        }
    }
    let settings: Settings
    private let epollFD: Int32
    private let wakeFD: Int32
    private var listenFD: Int32
    /// Reads land here; bytes are copied out only when a write cannot take them all.
    let scratch: UnsafeMutableRawBufferPointer
    private var tunnelsByFD: [EpollTunnel?] = []
    private var tunnels: [UInt64: EpollTunnel] = [:]
    private var nextSerial: UInt64 = 1
    private var timers = TimerHeap()
    /// The timer heap's key for re-arming the listener (tunnel serials start at 1).
    private static let listenerTimer: UInt64 = 0
    /// The listener is out of the epoll set after an accept failure, until the `listenerTimer` entry fires.
    private var acceptPaused = false
    /// Tunnels that stopped reading to be fair to others and continue on the next turn.
    private var runQueue: [EpollTunnel] = []
    /// Messages from other threads; `nil` once the loop has stopped (and closed `wakeFD`).
    private let inbox = Mutex<[Message]?>([])
    /// The time of the current turn of the loop.
    private(set) var now = NIODeadline.now()
    private let onListenerClosed: @Sendable () -> Void
    /// The loop thread's kernel id once it runs (0 before), for tests that read its /proc entry.
    let threadID = Mutex<Int32>(0)

    init(
        context: TunnelServerContext, listenFD: Int32, resolverLoop: any EventLoop,
        onListenerClosed: @escaping @Sendable () -> Void
    ) throws {
        self.context = context
        self.listenFD = listenFD
        self.resolverLoop = resolverLoop
        settings = Settings(context)
        self.onListenerClosed = onListenerClosed
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            Glibc.close(epollFD)
            throw IOError(errnoCode: errno, reason: "eventfd")
        }
        scratch = .allocate(byteCount: 256 * 1024, alignment: 16)
        // The listener is level-triggered: a turn accepts a bounded number and the rest stay signalled.
        addToEpoll(listenFD, events: EPOLLIN.rawValue, data: UInt64(UInt32(bitPattern: listenFD)))
        addToEpoll(wakeFD, events: EPOLLIN.rawValue, data: UInt64(UInt32(bitPattern: wakeFD)))
    }

    /// Runs on a thread of its own until the listener is closed and the last tunnel has ended.
    func start(name: String, cpu: Int32? = nil) {
        let box = Unmanaged.passRetained(ThreadBody { [self] in
            ctunnel_name_thread(name)
            if let cpu { _ = ctunnel_pin_thread(cpu) }
            threadID.withLock { $0 = ctunnel_thread_id() }
            // A signal could cut a read short after it copied some bytes; EpollTunnel takes a short read after
            // the peer's FIN as the end of its data, which holds only if no read is ever interrupted.
            ctunnel_block_signals()
            run()
        })
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        precondition(created == 0, "cannot start a tunnel thread: \(created)")
        pthread_detach(thread)
    }

    /// The CPU each of `count` loops is pinned to, or nil for none. `pin` nil: pin when there is one loop per
    /// CPU the process may use and more than one of them (the default `--threads`).
    static func pinnedCPUs(count: Int, pin: Bool?) -> [Int32]? {
        guard pin != false else { return nil }
        var cpus = [Int32](repeating: 0, count: 1024)
        let found = Int(ctunnel_allowed_cpus(&cpus, Int32(cpus.count)))
        guard found > 0 else { return nil }
        if pin == nil && (found < 2 || found != count) { return nil }
        return (0..<count).map { cpus[$0 % found] }
    }

    /// Any thread: hands a message to the loop.
    func post(_ message: Message) {
        inbox.withLock { messages in
            guard messages != nil else { return }
            messages!.append(message)
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    // MARK: the loop

    private func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer {
            events.deallocate()
            inbox.withLock { messages in
                messages = nil
                Glibc.close(wakeFD)
            }
            Glibc.close(epollFD)
            scratch.deallocate()
        }
        while listenFD >= 0 || !tunnels.isEmpty {
            let timeout = runQueue.isEmpty ? timers.timeoutMilliseconds(now: .now()) : 0
            let count = epoll_wait(epollFD, events, Int32(capacity), timeout)
            now = .now()
            if count < 0 {
                if errno == EINTR { continue }
                context.logger.error("tunnel loop stopped: epoll_wait failed", metadata: ["errno": "\(errno)"])
                return
            }
            for index in 0..<Int(count) {
                let event = events[index]
                let data = event.data.u64
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                if fd == listenFD {
                    acceptConnections()
                } else if fd == wakeFD {
                    readMessages()
                } else if Int(fd) < tunnelsByFD.count, let tunnel = tunnelsByFD[Int(fd)],
                    UInt32(truncatingIfNeeded: tunnel.serial) == UInt32(truncatingIfNeeded: data >> 32)
                {
                    tunnel.handle(fd: fd, events: event.events)
                }
            }
            fireTimers()
            if !runQueue.isEmpty {
                let queued = runQueue
                runQueue.removeAll(keepingCapacity: true)
                for tunnel in queued { tunnel.resume() }
            }
        }
    }

    private func acceptConnections() {
        for _ in 0..<64 {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    ctunnel_accept(listenFD, $0, &length)
                }
            }
            if fd < 0 {
                let code = errno
                if code == EINTR || code == ECONNABORTED { continue }
                if code != EAGAIN && code != EWOULDBLOCK { pauseAccepting(after: code) }
                return
            }
            // TCP_NODELAY is inherited from the listening socket (set in EpollEngine.listen).
            let serial = nextSerial
            nextSerial += 1
            let tunnel = EpollTunnel(
                loop: self, serial: serial, clientFD: fd,
                clientAddress: context.configuration.logClientAddress ? Self.socketAddress(address) : nil)
            tunnels[serial] = tunnel
            watch(fd, for: tunnel)
            tunnel.begin()
        }
    }

    /// The listener is level-triggered, so after EMFILE, ENFILE, ENOBUFS or ENOMEM the waiting connection
    /// signals it again at once: retrying spun a core and wrote a million log lines in 3 s. As NIO's
    /// `AcceptBackoffHandler` does, stop watching it for `acceptBackoff`; tunnels that end meanwhile free
    /// descriptors, and the waiting connections stay in the kernel's queue.
    private func pauseAccepting(after code: Int32) {
        context.acceptFailed(errno: code)
        guard !acceptPaused else { return }
        acceptPaused = true
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
        timers.push(now + TunnelServerContext.acceptBackoff, Self.listenerTimer)
    }

    private func resumeAccepting() {
        guard acceptPaused else { return }
        acceptPaused = false
        guard listenFD >= 0 else { return }  // closed meanwhile (stopAccepting)
        addToEpoll(listenFD, events: EPOLLIN.rawValue, data: UInt64(UInt32(bitPattern: listenFD)))
    }

    private func readMessages() {
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD, &value, 8)
        let messages = inbox.withLock { messages -> [Message] in
            defer { messages = [] }
            return messages ?? []
        }
        for message in messages {
            switch message {
            case .resolved(let serial, let result):
                tunnels[serial]?.resolved(result)
            case .stopAccepting:
                guard listenFD >= 0 else { continue }
                Glibc.close(listenFD)
                listenFD = -1
                onListenerClosed()
            }
        }
    }

    private func fireTimers() {
        while let (deadline, serial) = timers.popExpired(now: now) {
            if serial == Self.listenerTimer {
                resumeAccepting()
            } else {
                tunnels[serial]?.timerFired(scheduledFor: deadline)
            }
        }
    }

    // MARK: services for tunnels

    /// Registers a tunnel's socket once, edge-triggered, for input, output and peer shutdown.
    func watch(_ fd: Int32, for tunnel: EpollTunnel) {
        let index = Int(fd)
        if index >= tunnelsByFD.count {
            tunnelsByFD.append(contentsOf: repeatElement(nil, count: max(index + 1 - tunnelsByFD.count, tunnelsByFD.count)))
        }
        tunnelsByFD[index] = tunnel
        let data = UInt64(UInt32(bitPattern: fd)) | (UInt64(UInt32(truncatingIfNeeded: tunnel.serial)) << 32)
        addToEpoll(fd, events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue, data: data)
    }

    /// Closes a tunnel's socket (which also takes it out of the epoll set).
    func closeSocket(_ fd: Int32) {
        if Int(fd) < tunnelsByFD.count { tunnelsByFD[Int(fd)] = nil }
        Glibc.close(fd)
    }

    func schedule(_ serial: UInt64, at deadline: NIODeadline) {
        timers.push(deadline, serial)
        // Entries of ended tunnels and superseded deadlines stay until they fire: with a 10 s head
        // timeout at 8,000 tunnels/s that was 80,000 entries. Drop them once they outnumber the live.
        if timers.count > 2 * tunnels.count + 256 {
            timers.removeAll { deadline, serial in
                serial != Self.listenerTimer && tunnels[serial]?.isScheduled(at: deadline) != true
            }
        }
    }

    func runLater(_ tunnel: EpollTunnel) {
        runQueue.append(tunnel)
    }

    func forget(_ serial: UInt64) {
        tunnels[serial] = nil
    }

    private func addToEpoll(_ fd: Int32, events: UInt32, data: UInt64) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func socketAddress(_ storage: sockaddr_storage) -> SocketAddress? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
            }
        default:
            return nil
        }
    }
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Deadlines of tunnels, earliest first. Entries are never removed early: a tunnel that no longer needs
/// one ignores it when it fires (each tunnel keeps at most one entry ahead of its next deadline).
struct TimerHeap {
    private var entries: [(deadline: NIODeadline, serial: UInt64)] = []

    var count: Int { entries.count }

    /// Removes the entries `stale` picks, then restores the heap order.
    mutating func removeAll(where stale: (NIODeadline, UInt64) -> Bool) {
        entries.removeAll { stale($0.deadline, $0.serial) }
        var index = entries.count / 2
        while index > 0 {
            index -= 1
            siftDown(from: index)
        }
    }

    mutating func push(_ deadline: NIODeadline, _ serial: UInt64) {
        entries.append((deadline, serial))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if entries[parent].deadline <= entries[child].deadline { break }
            entries.swapAt(parent, child)
            child = parent
        }
    }

    mutating func popExpired(now: NIODeadline) -> (NIODeadline, UInt64)? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(from: 0)
        }
        return (first.deadline, first.serial)
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            if left >= entries.count { break }
            let right = left + 1
            let child = right < entries.count && entries[right].deadline < entries[left].deadline ? right : left
            if entries[parent].deadline <= entries[child].deadline { break }
            entries.swapAt(parent, child)
            parent = child
        }
    }

    /// epoll_wait's timeout: -1 without timers, else milliseconds rounded up.
    func timeoutMilliseconds(now: NIODeadline) -> Int32 {
        guard let first = entries.first else { return -1 }
        let nanoseconds = (first.deadline - now).nanoseconds
        if nanoseconds <= 0 { return 0 }
        return Int32(min((nanoseconds + 999_999) / 1_000_000, 3_600_000))
    }
}
#endif
