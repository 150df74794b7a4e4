public import Edge
public import HummingbirdCore
public import IPAddress
public import Logging
public import NIOCore
import Synchronization
import Glibc

/// Remembers, per open connection, the client address a PROXY header announced.
/// Request handlers look it up by channel; entries leave when the connection closes.
public final class ConnectionAddressRegistry: Sendable {
    private let addresses = Mutex<[ObjectIdentifier: IPAddress]>([:])
    private let enabled = Atomic<Bool>(false)

    /// The process-wide registry (request contexts are built without access to app state).
    public static let shared = ConnectionAddressRegistry()

    public init() {}

    /// False until a PROXY listener starts, so plain servers skip the lookup.
    public var isEnabled: Bool { enabled.load(ordering: .relaxed) }
    public func enable() { enabled.store(true, ordering: .relaxed) }

    public func set(_ address: IPAddress, for channel: any Channel) {
        let id = ObjectIdentifier(channel)
        addresses.withLock { $0[id] = address }
        channel.closeFuture.whenComplete { [self] _ in
            addresses.withLock { _ = $0.removeValue(forKey: id) }
        }
    }

    public func address(for channel: any Channel) -> IPAddress? {
        addresses.withLock { $0[ObjectIdentifier(channel)] }
    }

    public var count: Int { addresses.withLock { $0.count } }
}

/// Reads an optional PROXY protocol header (v1 or v2) at the start of a connection.
///
/// From a trusted peer, a valid header's source address becomes the connection's client
/// address. A header from an untrusted peer, or a malformed one, closes the connection.
/// A connection that starts with anything else is passed on untouched.
public final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let trustedProxies: TrustedProxies
    private let registry: ConnectionAddressRegistry
    private let logger: Logger
    private var buffered: ByteBuffer?

    public init(trustedProxies: TrustedProxies, registry: ConnectionAddressRegistry, logger: Logger) {
        self.trustedProxies = trustedProxies
        self.registry = registry
        self.logger = logger
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var pending = buffered {
            pending.writeBuffer(&incoming)
            buffered = pending
        } else {
            buffered = incoming
        }
        guard let bytes = buffered else { return }
        let view = bytes.readableBytesView
        switch ProxyProtocolParser.parse(view) {
        case .needMoreData:
            return
        case .notProxy:
            finish(context: context)
        case .invalid(let reason):
            reject(context: context, reason: "malformed PROXY header: \(reason)")
        case .header(let header, let length):
            guard let peer = context.channel.remoteAddress.flatMap(IPAddress.init(socketAddress:)),
                  trustedProxies.contains(peer)
            else {
                reject(context: context, reason: "PROXY header from an untrusted peer")
                return
            }
            if header.command == .proxy, let source = header.source {
                registry.set(source.unmapped, for: context.channel)
            }
            buffered?.moveReaderIndex(forwardBy: length)
            finish(context: context)
        }
    }

    private func finish(context: ChannelHandlerContext) {
        if let rest = buffered, rest.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(rest))
        }
        buffered = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func reject(context: ChannelHandlerContext, reason: String) {
        logger.notice("closing connection", metadata: ["reason": "\(reason)", "peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
        buffered = nil
        context.close(promise: nil)
    }
}

/// Wraps a Hummingbird child channel (HTTP/1, TLS, …) so that a PROXY header is read before it.
public struct ProxyProtocolChannel<BaseChannel: ServerChildChannel>: ServerChildChannel {
    public typealias Value = BaseChannel.Value

    let base: BaseChannel
    let trustedProxies: TrustedProxies
    let registry: ConnectionAddressRegistry

    public init(_ base: BaseChannel, trustedProxies: TrustedProxies, registry: ConnectionAddressRegistry) {
        self.base = base
        self.trustedProxies = trustedProxies
        self.registry = registry
        registry.enable()
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ProxyProtocolHandler(trustedProxies: trustedProxies, registry: registry, logger: logger)
            )
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension IPAddress {
    /// The IP of a NIO socket address (nil for UNIX sockets).
    public init?(socketAddress: SocketAddress) {
        switch socketAddress {
        // Read at the fields' fixed offsets in `sockaddr_in` (4) and `sockaddr_in6` (8): their C
        // members come from a module of NIO's this one does not import.
        case .v4(let a):
            self = .v4(withUnsafeBytes(of: a.address) { IPv4Address(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) })
        case .v6(let a):
            guard let v6 = withUnsafeBytes(of: a.address, { IPv6Address(bytes: UnsafeRawBufferPointer(rebasing: $0[8..<24])) }) else { return nil }
            self = IPAddress.v6(v6).unmapped
        case .unixDomainSocket:
            return nil
        }
    }
}
