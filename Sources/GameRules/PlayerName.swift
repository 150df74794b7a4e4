/// A player's name: 1–40 characters of ASCII letters, digits and `@ / : . ^ + ! - _ *`
/// (the rule ipv4.games enforces, so existing clients and bots keep working).
public struct PlayerName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    public static let maximumLength = 40
    public static let allowedPunctuation: Set<UInt8> = Set("@/:.^+!-_*".utf8)
    public static let rule = "a name is 1–40 characters of ASCII letters, digits and @ / : . ^ + ! - _ *"

    public enum ValidationError: Error, Equatable, CustomStringConvertible {
        case missing
        case empty
        case tooLong(Int)
        case invalidCharacter(position: Int)

        public var description: String {
            switch self {
            case .missing: return "missing name: use /claim?name=NAME; \(PlayerName.rule)"
            case .empty: return "empty name; \(PlayerName.rule)"
            case .tooLong(let n): return "name is \(n) characters long; \(PlayerName.rule)"
            case .invalidCharacter(let i): return "invalid character at position \(i + 1); \(PlayerName.rule)"
            }
        }
    }

    public init(validating text: String) throws(ValidationError) {
        let utf8 = text.utf8
        if utf8.isEmpty { throw .empty }
        for (i, byte) in utf8.enumerated() where !PlayerName.isAllowed(byte) {
            throw .invalidCharacter(position: i)
        }
        if utf8.count > PlayerName.maximumLength { throw .tooLong(utf8.count) }
        value = text
    }

    public init?(_ text: String) {
        guard let name = try? PlayerName(validating: text) else { return nil }
        self = name
    }

    /// For names read back from storage, which were validated when first stored.
    package init(trusted text: String) { value = text }

    @inline(__always)
    public static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return allowedPunctuation.contains(byte)
        }
    }

    public var description: String { value }
    public static func < (a: PlayerName, b: PlayerName) -> Bool { a.value < b.value }
}
