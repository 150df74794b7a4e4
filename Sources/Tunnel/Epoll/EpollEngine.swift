#if os(Linux)
import Glibc
import Synchronization
import NIOCore

/// How many of the engine's listeners are still open (shared by their loops' close callbacks).
private final class OpenListeners: Sendable {
    let count: Atomic<Int>
    init(_ count: Int) { self.count = Atomic(count) }
}

/// The epoll engine's listeners and loops: one listening socket per loop on the same port (SO_REUSEPORT).
final class EpollEngine: Sendable {
    private let loops: [EpollLoop]
    let localAddress: SocketAddress?
    private let closed: EventLoopPromise<Void>

    private init(loops: [EpollLoop], localAddress: SocketAddress?, closed: EventLoopPromise<Void>) {
        self.loops = loops
        self.localAddress = localAddress
        self.closed = closed
    }

    static func start(host: String, port: Int, context: TunnelServerContext, threads: Int, pinThreads: Bool?, group: any EventLoopGroup) throws -> EpollEngine {
        let requested = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let count = max(1, threads)
        var listeners: [Int32] = []
        var bound = requested
        do {
            for _ in 0..<count {
                let fd = try listen(on: bound, shared: count > 1)
                listeners.append(fd)
                if bound.port == 0 { bound = try localAddress(of: fd) }
            }
        } catch {
            for fd in listeners { Glibc.close(fd) }
            throw error
        }
        let listenersOpen = OpenListeners(count)
        let closed = group.next().makePromise(of: Void.self)
        let onListenerClosed: @Sendable () -> Void = {
            let remaining = listenersOpen.count.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
            if remaining == 0 { closed.succeed(()) }
        }
        var loops: [EpollLoop] = []
        for fd in listeners {
            do {
                loops.append(
                    try EpollLoop(
                        context: context, listenFD: fd, resolverLoop: group.next(),
                        onListenerClosed: onListenerClosed))
            } catch {
                for fd in listeners { Glibc.close(fd) }
                throw error
            }
        }
        // Pinned, each loop takes the connections whose packets the kernel handles on its CPU (SO_INCOMING_CPU
        // steers the SO_REUSEPORT choice, Linux 6.2+): a tunnel then runs where its packets arrive, with no
        // wake-up across CPUs. +5 % tunnels/s in bench/tunnel test (c), tcp mode, on 2 cores (docs/tunnel.md).
        let cpus = EpollLoop.pinnedCPUs(count: count, pin: pinThreads)
        for (index, loop) in loops.enumerated() {
            var cpu = cpus?[index]
            if var value = cpu,
                setsockopt(listeners[index], SOL_SOCKET, SO_INCOMING_CPU, &value, socklen_t(MemoryLayout<Int32>.size)) != 0
            {
                // No SO_INCOMING_CPU (before Linux 3.19): the loop runs unpinned. Kernels 3.19–6.1 accept the
                // option but do not steer the reuseport choice by it; their pinned loops take any connection.
                cpu = nil
            }
            loop.start(name: "tunnel-\(index)", cpu: cpu)
        }
        return EpollEngine(loops: loops, localAddress: bound, closed: closed)
    }

    /// The kernel ids of the loops' threads (0 for one not yet running).
    var loopThreadIDs: [Int32] { loops.map { $0.threadID.withLock { $0 } } }

    /// Stops accepting; open tunnels run on until they end, then the loops' threads exit.
    func close() async throws {
        for loop in loops { loop.post(.stopAccepting) }
        try await closed.futureResult.get()
    }

    func waitUntilClosed() async throws {
        try await closed.futureResult.get()
    }

    private static func listen(on address: SocketAddress, shared: Bool) throws -> Int32 {
        let fd = socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if shared { _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        // Accepted sockets inherit it, which saves a system call per connection.
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let boundResult = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        guard boundResult == 0, Glibc.listen(fd, 1024) == 0 else {
            let error = IOError(errnoCode: errno, reason: "bind")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    private static func localAddress(of fd: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, let address = EpollLoop.socketAddress(storage) else {
            throw IOError(errnoCode: errno, reason: "getsockname")
        }
        return address
    }
}
#endif
