import LocationDB
import IPQuestTestSupport
import Testing

extension RealDatabaseTests {
    @Suite("Sharing one database across tasks")
    struct ConcurrencyTests {
        @Test("concurrent lookups from 8 tasks give the sequential answers", .timeLimit(.minutes(2)))
        func concurrentLookups() async throws {
            let db = try Shared.open()
            var random = SplitMix64(seed: 77)
            let addresses: [IPAddress] = (0..<40_000).map { i in
                i % 2 == 0 ? .v4(IPv4Address(UInt32(truncatingIfNeeded: random.next())))
                           : .v6(IPv6Address(high: 0x2000_0000_0000_0000 | (random.next() >> 3), low: random.next()))
            }
            let expected = addresses.map { db.lookup($0) }
            let results = await withTaskGroup(of: (Int, [LocationNetwork?]).self) { group in
                for task in 0..<8 {
                    group.addTask {
                        // Each task walks all addresses, starting at a different offset.
                        let shift = task * addresses.count / 8
                        return (shift, (0..<addresses.count).map { db.lookup(addresses[($0 + shift) % addresses.count]) })
                    }
                }
                var all: [(Int, [LocationNetwork?])] = []
                for await result in group { all.append(result) }
                return all
            }
            #expect(results.count == 8)
            for (shift, answers) in results {
                let rotated = (0..<answers.count).map { answers[($0 - shift + answers.count) % answers.count] }
                #expect(rotated == expected)
            }
        }
    }
}
