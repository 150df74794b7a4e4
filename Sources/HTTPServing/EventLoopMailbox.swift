public import Edge
public import NIOCore
import Synchronization

/// Work handed to one event loop from another thread, run on the loop in the order posted,
/// by one loop task per burst instead of one task per item.
///
/// Why: the claim writer answers a committed batch of hundreds of claims at once, each on its
/// connection's loop. With `EventLoop.execute` each answer allocated a loop task and took the
/// loop's task lock against the loop itself; the loop's task handling cost about 3 µs per
/// claim in the profile of bench/claims.sh. Here an answer is an append under a lock that the
/// loop takes once per burst.
public final class EventLoopMailbox: Sendable {
    public typealias Work = @Sendable () -> Void

    public let eventLoop: any EventLoop
    private let inbox = Mutex<[Work]>([])

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `work` on the loop, after everything posted before it.
    public func post(_ work: @escaping Work) {
        let first = inbox.withLock { inbox in
            inbox.append(work)
            return inbox.count == 1
        }
        // Only the post that finds the inbox empty schedules a drain; later ones join it.
        if first { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        var work: [Work] = []
        inbox.withLock { swap(&$0, &work) }
        for item in work { item() }
    }
}

/// One mailbox per event loop, for the connections of one server.
public final class EventLoopMailboxes: Sendable {
    private let boxes = Mutex<[ObjectIdentifier: EventLoopMailbox]>([:])

    public init() {}

    public func mailbox(for eventLoop: any EventLoop) -> EventLoopMailbox {
        boxes.withLock { boxes in
            if let box = boxes[ObjectIdentifier(eventLoop)] { return box }
            let box = EventLoopMailbox(eventLoop: eventLoop)
            boxes[ObjectIdentifier(eventLoop)] = box
            return box
        }
    }
}
