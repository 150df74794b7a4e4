#if os(Linux)
import NIOCore
import Testing

@testable import Tunnel

@Suite("epoll engine timer heap")
struct TimerHeapTests {
    @Test func popsInDeadlineOrderAndDropsRemovedEntries() {
        var heap = TimerHeap()
        var generator = SystemRandomNumberGenerator()
        var expected: [(Int64, UInt64)] = []
        for serial in 0..<2_000 as Range<UInt64> {
            let at = Int64.random(in: 0..<1_000_000, using: &generator)
            heap.push(.uptimeNanoseconds(UInt64(at)), serial)
            expected.append((at, serial))
        }
        heap.removeAll { _, serial in serial % 3 == 0 }
        expected.removeAll { $0.1 % 3 == 0 }
        #expect(heap.count == expected.count)
        #expect(heap.popExpired(now: .uptimeNanoseconds(0)) == nil || expected.contains { $0.0 == 0 })
        var popped: [(NIODeadline, UInt64)] = []
        while let entry = heap.popExpired(now: .uptimeNanoseconds(2_000_000)) { popped.append(entry) }
        #expect(popped.count == expected.count)
        #expect(zip(popped, popped.dropFirst()).allSatisfy { $0.0 <= $1.0 }, "not in deadline order")
        #expect(Set(popped.map(\.1)) == Set(expected.map(\.1)))
        #expect(heap.timeoutMilliseconds(now: .uptimeNanoseconds(0)) == -1)
    }
}
#endif
