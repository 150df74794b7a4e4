/// How a configuration value's text is read, the same for every file and flag.
///
/// - Integers: `[-+]?` then decimal digits, or `0x` hex, or `0o` octal, with single `_` between
///   digits (`1_000`); nothing else (`1.0`, `1e3` are not integers).
/// - Numbers: an integer or a decimal float (`0.5`, `-1.25`, `1e3`, `2.5E-2`), finite only
///   (`nan`, `inf` and `1e999` are refused).
/// - Booleans, case-insensitive: `true yes on 1` and `false no off 0`.
/// - Durations: one or more NUMBER UNIT parts, spaces allowed between them (`10s`, `500ms`,
///   `1m 30s`, `1h30m`, `2h`, `1day`); a unit is required (`10` alone is refused); units `ns nsec`,
///   `us usec`, `ms msec millis`, `s sec secs second seconds`, `m min mins minute minutes`,
///   `h hr hrs hour hours`, `d day days`, `w week weeks`; at most `maximumDuration` (100 years).
/// - Byte counts: a plain integer, or a number with a unit, case-insensitive, spaces and `_`
///   ignored: `b`; `k kb m mb g gb tb` (powers of 1000); `kib mib gib tib` (powers of 1024):
///   `1048576`, `10mb`, `64 KiB`.
///
/// The functions that can say why a text is refused throw a `ConfigFileError` whose key is
/// empty; the readers of `ConfigNode` fill in the key.
public enum ConfigSyntax {
    /// The longest duration a configuration may give. Timers count nanoseconds in an Int64
    /// (292 years), and a figure beyond a century is a typo rather than a wish.
    public static let maximumDuration: Duration = .seconds(100 * 365 * 86400)

    /// The texts a plain (unquoted) YAML scalar spells null with.
    public static let nullSpellings: Set<String> = ["", "~", "null", "Null", "NULL"]

    /// `[-+]?digits` with single `_` between digits, `0x` hex or `0o` octal; nil if not one, or
    /// if it does not fit an `Int`.
    public static func integer(_ text: String) -> Int? {
        var body = Substring(text)
        var negative = false
        if let sign = body.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        var radix = 10
        if body.hasPrefix("0x") || body.hasPrefix("0o") {
            radix = body.hasPrefix("0x") ? 16 : 8
            body = body.dropFirst(2)
        }
        // Digits (and separators) only: `Int(_:radix:)` alone would take a second sign.
        guard let first = body.first, first != "_", body.last != "_", !body.contains("__"),
              body.allSatisfy({ $0 == "_" || ($0.isASCII && $0.isHexDigit) })
        else { return nil }
        let digits = body.filter { $0 != "_" }
        guard let magnitude = Int(digits, radix: radix) else {
            // Int.min's magnitude does not fit an Int.
            return negative ? Int("-" + digits, radix: radix) : nil
        }
        return negative ? -magnitude : magnitude
    }

    /// An integer or a decimal float such as `0.5`, `-1.25`, `1e3` or `2.5E-2`; nil for anything
    /// else, names such as `nan` or `inf` included, and for values too large for a `Double`.
    public static func decimal(_ text: String) -> Double? {
        if let n = integer(text) { return Double(n) }
        var sawDigit = false
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"): break
            default: return nil
            }
        }
        guard sawDigit, let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// `true yes on 1` / `false no off 0`, case-insensitive; nil for anything else.
    public static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    private static let durationUnits: [String: Duration] = [
        "ns": .nanoseconds(1), "nsec": .nanoseconds(1),
        "us": .microseconds(1), "usec": .microseconds(1),
        "ms": .milliseconds(1), "msec": .milliseconds(1), "millis": .milliseconds(1),
        "s": .seconds(1), "sec": .seconds(1), "secs": .seconds(1), "second": .seconds(1), "seconds": .seconds(1),
        "m": .seconds(60), "min": .seconds(60), "mins": .seconds(60), "minute": .seconds(60), "minutes": .seconds(60),
        "h": .seconds(3600), "hr": .seconds(3600), "hrs": .seconds(3600), "hour": .seconds(3600), "hours": .seconds(3600),
        "d": .seconds(86400), "day": .seconds(86400), "days": .seconds(86400),
        "w": .seconds(604_800), "week": .seconds(604_800), "weeks": .seconds(604_800),
    ]

    /// A humantime-style duration: `10s`, `500ms`, `1m 30s`, `2h`, `1day` (see the type's notes).
    public static func duration(_ text: String) throws(ConfigFileError) -> Duration {
        func problem(_ text: String) -> ConfigFileError { ConfigFileError(key: "", problem: text) }
        var total = Duration.zero
        var index = text.startIndex
        var parts = 0
        func skipSpaces() { while index < text.endIndex, text[index] == " " { index = text.index(after: index) } }
        skipSpaces()
        while index < text.endIndex {
            let numberStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isNumber { index = text.index(after: index) }
            guard numberStart < index, let number = Int64(text[numberStart..<index]) else {
                throw problem("'\(text)' is not a duration (expected e.g. 10s, 500ms, 1m 30s)")
            }
            let unitStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isLetter { index = text.index(after: index) }
            let unit = String(text[unitStart..<index])
            guard let scale = durationUnits[unit] else {
                throw problem(unit.isEmpty
                    ? "'\(text)' has no time unit (expected e.g. 10s, 500ms, 1m 30s)"
                    : "'\(text)' has an unknown time unit '\(unit)'")
            }
            // Checked before multiplying: `.seconds(604_800) * Int64.max` overflows Duration and traps.
            let tooLong = problem("'\(text)' is longer than the maximum of 100 years")
            guard Double(number) <= maximumDuration / scale else { throw tooLong }
            total += scale * number
            guard total <= maximumDuration else { throw tooLong }
            parts += 1
            skipSpaces()
        }
        guard parts > 0 else { throw problem("empty duration") }
        return total
    }

    private static let byteUnits: [Substring: UInt64] = [
        "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1_000_000, "mb": 1_000_000, "g": 1_000_000_000, "gb": 1_000_000_000,
        "tb": 1_000_000_000_000, "kib": 1024, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    ]

    /// A byte count: `1048576`, `10mb`, `64 KiB` (see the type's notes).
    public static func byteCount(_ text: String) throws(ConfigFileError) -> UInt64 {
        let lowered = text.lowercased().filter { $0 != " " && $0 != "_" }
        let digits = lowered.prefix { $0.isASCII && $0.isNumber }
        let unit = lowered.dropFirst(digits.count)
        guard let number = UInt64(digits), let multiplier = byteUnits[unit] else {
            throw ConfigFileError(key: "", problem: "'\(text)' is not a byte count (expected e.g. 1048576, 10mb, 64kib)")
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw ConfigFileError(key: "", problem: "'\(text)' is too large") }
        return product
    }
}
