import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Tunnel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: loopback servers the tunnel connects to

/// Echoes every byte; when the client half-closes, finishes writing and half-closes back.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Closing output after EOF escalates to a full close, which would drop queued writes: wait for them.
            let channel = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer())).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
            }
        }
    }
}

/// Answers every request (head only, no body) with `200` and a body of `bodySize` bytes, keep-alive.
final class HTTPResponderHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var pending = ByteBuffer()
    let body: String

    init(body: String) { self.body = body }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        while let text = pending.getString(at: pending.readerIndex, length: pending.readableBytes),
              let range = text.range(of: "\r\n\r\n")
        {
            let length = text.utf8.distance(from: text.startIndex, to: range.upperBound)
            pending.moveReaderIndex(forwardBy: length)
            let response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nContent-Type: text/plain\r\n\r\n\(body)"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        }
    }
}

/// Sends `bytes` as soon as a connection opens, then closes it: the data and the FIN arrive together.
final class SendThenCloseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}

struct LoopbackServer {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func start(_ makeHandler: @escaping @Sendable () -> any ChannelHandler) async throws -> LoopbackServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackServer(channel: channel)
    }

    static func echo() async throws -> LoopbackServer {
        try await start { EchoHandler() }
    }

    func close() async {
        try? await channel.close()
    }
}

/// A resolver the test controls: known names map to loopback addresses, every other name fails.
struct FixedResolver: TargetNameResolver {
    let table: [String: [String]]

    func resolve(host: String, port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]> {
        guard let addresses = table[host] else {
            return eventLoop.makeFailedFuture(NameResolutionError(host: host, reason: "not in the test table"))
        }
        return eventLoop.makeCompletedFuture {
            try addresses.map { try SocketAddress(ipAddress: $0, port: port) }
        }
    }
}

/// A configuration that allows loopback targets and keeps every timer short.
func loopbackConfiguration(_ adjust: (inout TunnelConfiguration) -> Void = { _ in }) -> TunnelConfiguration {
    var configuration = TunnelConfiguration()
    configuration.clientConnection.initiationTimeout = .seconds(5)
    configuration.targetConnection.connectTimeout = .seconds(3)
    configuration.targetConnection.deniedNetworks = .init()
    adjust(&configuration)
    return configuration
}

extension TunnelEngine {
    /// Every engine this platform can run for `http` and `tcp`: each behaviour test runs on each.
    static var tested: [TunnelEngine] {
        #if os(Linux)
        [.epoll, .nio]
        #else
        [.nio]
        #endif
    }
}

func withTunnel<R>(
    engine: TunnelEngine = .automatic,
    _ configuration: TunnelConfiguration,
    mode: TunnelMode = .http,
    resolver: (any TargetNameResolver)? = FixedResolver(table: ["echo.test": ["127.0.0.1"]]),
    threads: Int? = nil,
    pinThreads: Bool? = nil,
    _ body: (TunnelServer) async throws -> R
) async throws -> R {
    var logger = Logger(label: "tunnel-test")
    logger.logLevel = .warning
    let server = try await TunnelServer.start(
        host: "127.0.0.1", port: 0, mode: mode, configuration: configuration, resolver: resolver, engine: engine,
        threads: threads, pinThreads: pinThreads, logger: logger)
    #expect(server.engine == TunnelServer.resolve(engine, for: mode))
    do {
        let result = try await body(server)
        try await server.close()
        return result
    } catch {
        try? await server.close()
        throw error
    }
}

// MARK: a blocking loopback client, every operation bounded by a socket timeout

struct ClientError: Error, CustomStringConvertible {
    let description: String
}

final class BlockingClient: @unchecked Sendable {
    let fd: Int32

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket() failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw ClientError(description: "connect() failed: errno \(errno)")
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError(description: "send() failed: errno \(errno)") }
            offset += n
        }
    }

    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Reads once; empty means EOF.
    func receiveSome(max: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, max, 0) }
        guard n >= 0 else { throw ClientError(description: "recv() failed: errno \(errno)") }
        return Array(buffer[..<n])
    }

    func receive(exactly count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let chunk = try receiveSome(max: min(65536, count - out.count))
            guard !chunk.isEmpty else { throw ClientError(description: "EOF after \(out.count) of \(count) bytes") }
            out += chunk
        }
        return out
    }

    func receiveUntilEOF(limit: Int = 64 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < limit {
            let chunk = try receiveSome()
            if chunk.isEmpty { return out }
            out += chunk
        }
        throw ClientError(description: "no EOF within \(limit) bytes")
    }

    /// Reads a response head (through the blank line); bytes after it are returned as `rest`.
    func receiveResponseHead() throws -> (statusLine: String, headers: [String], rest: [UInt8]) {
        var bytes: [UInt8] = []
        while true {
            if let end = ProxyRequestHeadParser.endOfHead(bytes) {
                let text = String(decoding: bytes[..<end], as: UTF8.self)
                var lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
                let status = lines.removeFirst()
                return (status, lines, Array(bytes[end...]))
            }
            let chunk = try receiveSome()
            guard !chunk.isEmpty else {
                throw ClientError(description: "EOF before a response head; got \(String(decoding: bytes, as: UTF8.self))")
            }
            bytes += chunk
        }
    }

    /// Sends a CONNECT and returns the status code and the rest of the answer (body of an error answer).
    func connect(to target: String, extraHeaders: [String] = [], earlyData: String = "") throws -> (status: Int, headers: [String], body: String) {
        var head = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n"
        for header in extraHeaders { head += header + "\r\n" }
        try send(head + "\r\n" + earlyData)
        let response = try receiveResponseHead()
        let status = Int(response.statusLine.split(separator: " ")[1]) ?? -1
        var body = response.rest
        if status != 200 { body += try receiveUntilEOF() }
        return (status, response.headers, String(decoding: body, as: UTF8.self))
    }
}

/// Deterministic pseudo-random bytes.
func patternBytes(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        out[i] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return out
}

/// A listening socket whose accept queue is full and never drained: connects to it hang (SYNs dropped).
final class BlackholeListener {
    let fd: Int32
    let port: Int
    private let fillers: [Int32]

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard listen(fd, 0) == 0 else { throw ClientError(description: "listen failed") }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: bound.sin_port))
        self.port = port
        // Fill the accept queue with non-blocking connects.
        var filled: [Int32] = []
        for _ in 0..<4 {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var target = address
            target.sin_port = in_port_t(UInt16(port).bigEndian)
            _ = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            filled.append(client)
        }
        fillers = filled
        usleep(100_000)
    }

    deinit {
        for filler in fillers { Glibc.close(filler) }
        Glibc.close(fd)
    }
}

/// Runs `body` on a new thread so blocking socket calls do not hold the concurrency pool.
func onThread<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// The time since an instant, in seconds.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
