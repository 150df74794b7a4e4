import Foundation
import IPQuestTestSupport
import Testing
@testable import GameRules

/// The board's count maps hold exactly what a dictionary of the same operations holds,
/// through growth, removals that shift entries back (wrapping around the table's end) and
/// emptying; maps with the same counts are equal however they were built.
@Suite struct CountMapTests {
    @Test(arguments: [UInt64(31), 32, 33])
    func randomOperationsMatchADictionary(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        print("CountMapTests seed: \(seed)")
        var map = CountMap()
        var expected: [UInt32: Int32] = [:]
        // Few keys, so entries collide, cluster and get removed often; then many.
        for (keys, steps) in [(40, 20_000), (5_000, 60_000)] {
            for step in 0..<steps {
                let key = UInt32(rng.below(keys)) &* 2_654_435_761 % 4_000_000_000
                switch rng.below(10) {
                case 0..<5:
                    let delta = Int32(rng.below(5)) - 2
                    let n = map.add(delta, to: key)
                    let want = (expected[key] ?? 0) + delta
                    expected[key] = want == 0 ? nil : want
                    #expect(n == want)
                case 5..<7:
                    map.removeValue(forKey: key)
                    expected[key] = nil
                case 7:
                    let value = Int32(rng.below(7)) - 3
                    map.set(value, for: key)
                    expected[key] = value == 0 ? nil : value
                default:
                    #expect(map[key] == expected[key])
                }
                if step % 997 == 0 {
                    #expect(map.count == expected.count)
                    #expect(Dictionary(uniqueKeysWithValues: map.map { ($0.key, $0.value) }) == expected, "seed \(seed) step \(step)")
                }
            }
        }
        #expect(Dictionary(uniqueKeysWithValues: map.map { ($0.key, $0.value) }) == expected)
        // Built in another order, from a reserved table: equal.
        var other = CountMap(minimumCapacity: expected.count)
        for (key, value) in expected.sorted(by: { $0.key > $1.key }) { other.set(value, for: key) }
        #expect(other == map)
        // Emptied, a map gives its storage back.
        for key in expected.keys { map.removeValue(forKey: key) }
        #expect(map.isEmpty && map.capacity == 0 && map != other)
    }

    /// A table holding n entries restored at its exact size stays within a load of 0.85.
    @Test func restoredTablesAreSizedToTheirEntries() {
        for n in [1, 7, 100, 4_321, 100_000] {
            var map = CountMap(minimumCapacity: n)
            let capacity = map.capacity
            for k in 0..<n { map.set(1, for: UInt32(k)) }
            #expect(map.capacity == capacity && Double(n) / Double(capacity) <= 0.85 && Double(n) / Double(capacity) > 0.8 || n < 100)
        }
    }
}
