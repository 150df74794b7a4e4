public import Edge
public import NIOCore

/// Closes a connection whose client may still be sending, without losing the answer just
/// written to it. Closing a socket with unread input makes the kernel send a reset, and a
/// client that is still writing (a 431 for an oversized head, a 413 for a body) then loses the
/// answer in flight. Like nginx's `lingering_close`: the write side is shut (the client reads
/// the answer and the FIN), and what still arrives is read and dropped until the client closes,
/// `maxBytes` were dropped, or `timeout` passes; then the connection is closed.
public enum LingeringClose {
    public static let timeout = TimeAmount.seconds(2)
    public static let maxBytes = 1 << 20

    /// Call on the channel's event loop once the answer is written.
    public static func start(_ channel: any Channel, timeout: TimeAmount = timeout, maxBytes: Int = maxBytes) {
        channel.eventLoop.preconditionInEventLoop()
        guard channel.isActive else { return }
        let drain = Drain(maxBytes: maxBytes)
        do {
            try channel.pipeline.syncOperations.addHandler(drain, position: .first)
        } catch {
            channel.close(promise: nil)
            return
        }
        channel.close(mode: .output, promise: nil)
        channel.read()
        let closeLater = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in closeLater.cancel() }
    }

    /// Drops every byte read; closes at the client's end of input or past the byte budget.
    final class Drain: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        private var left: Int

        init(maxBytes: Int) { left = maxBytes }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            left -= unwrapInboundIn(data).readableBytes
            if left < 0 { context.close(promise: nil) }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            // Keep reading even if the handlers behind us stopped asking for data.
            if context.channel.isActive { context.read() }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
