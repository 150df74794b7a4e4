import Dispatch
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import HTTPServing
import Edge

/// Work posted from other threads runs on the mailbox's loop, each poster's items in the order
/// posted, every item once; a loop gets one mailbox per registry.
@Suite struct EventLoopMailboxTests {
    @Test(.timeLimit(.minutes(1))) func postsFromManyThreadsRunOnTheLoopInOrderOnce() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let mailboxes = EventLoopMailboxes()
        let mailbox = mailboxes.mailbox(for: loop)
        #expect(mailboxes.mailbox(for: loop) === mailbox)
        #expect(mailboxes.mailbox(for: group.next()) !== mailbox)

        let posters = 4, perPoster = 5_000
        let ran = Mutex<[[Int]]>(Array(repeating: [], count: posters))
        let offLoop = Mutex(0)
        let finished = loop.makePromise(of: Void.self)
        let remaining = Mutex(posters * perPoster)
        DispatchQueue.concurrentPerform(iterations: posters) { poster in
            for i in 0..<perPoster {
                mailbox.post {
                    if !loop.inEventLoop { offLoop.withLock { $0 += 1 } }
                    ran.withLock { $0[poster].append(i) }
                    if remaining.withLock({ $0 -= 1; return $0 }) == 0 { finished.succeed() }
                }
            }
        }
        try await finished.futureResult.get()
        #expect(offLoop.withLock { $0 } == 0)
        for sequence in ran.withLock({ $0 }) { #expect(sequence == Array(0..<perPoster)) }
        try await group.shutdownGracefully()
    }
}
