public import Edge
public import HTTPServing
public import Hummingbird
public import IPAddress
public import NIOCore
import GameRules

/// Per-request context: Hummingbird's core storage plus the TCP peer (or the client a
/// trusted PROXY header announced for this connection).
public struct GameRequestContext: RequestContext, RemoteAddressRequestContext, DataCenterTaggedContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection's peer as a socket address (for tracing).
    public let remoteAddress: SocketAddress?
    /// The connection's client: the PROXY-announced source if any, else the TCP peer.
    public let peer: IPAddress?
    /// Set by `AdmissionMiddleware` when the client is in a cloud provider's ranges.
    public var dataCenter: DataCenterTag?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        peer = Self.client(of: source.channel)
    }

    /// The PROXY-announced source of the channel's connection if any, else its TCP peer.
    static func client(of channel: any Channel) -> IPAddress? {
        if ConnectionAddressRegistry.shared.isEnabled, let announced = ConnectionAddressRegistry.shared.address(for: channel) {
            return announced
        }
        return channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
    }

    /// Claims carry no body; keep uploads tiny.
    public var maxUploadSize: Int { 64 * 1024 }
}
