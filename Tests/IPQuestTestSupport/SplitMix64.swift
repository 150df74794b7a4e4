/// SplitMix64 (Steele, Lea, Flood 2014): the one seeded generator of every test target, so a
/// fuzz or property run prints its seed and can be repeated exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The seed this generator started from (print it with the test's findings).
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<bound (modulo bias is fine for tests).
    public mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}
