import Foundation
import Yams
import GameRules

/// A configuration file's YAML as plain values: mappings as `[String: Any]`, sequences as
/// `[Any]`, and scalars as `Int`, `Double`, `NSNull` (null) or `String`.
///
/// Yams' `load` types scalars with its default resolver, whose rules are regular expressions
/// compiled through ICU the first time they run: for a file read once at start, ICU's regular
/// expression engine and its data stayed paged in for the life of the server. Here the document is
/// composed with no resolver rules and plain (unquoted) scalars are typed by hand, following
/// YAML's core schema for what a configuration holds: null, integers (decimal with `_`
/// separators, `0x` hex, `0o` octal) and decimal floats. Everything else, booleans included,
/// stays text (`ServeConfiguration.bool` reads `true`, `yes`, `on`…), and a quoted scalar is
/// always text, so `port: "8080"` and `port: 8080` mean the same while `name: "0x10"` stays a name.
enum ConfigYAML {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The document's value; nil for an empty document.
    static func load(_ text: String) throws -> Any? {
        guard let root = try Yams.compose(yaml: text, .basic) else { return nil }
        return try value(of: root, path: "")
    }

    static func value(of node: Node, path: String) throws -> Any {
        switch node {
        case .scalar(let scalar):
            return scalar.style == .plain ? plainScalar(scalar.string) : scalar.string
        case .sequence(let sequence):
            return try sequence.enumerated().map { try value(of: $1, path: "\(path)[\($0)]") }
        case .mapping(let mapping):
            var map: [String: Any] = [:]
            for (key, item) in mapping {
                guard case .scalar(let name) = key else {
                    throw Problem(description: "\(path.isEmpty ? "a" : "'\(path)' has a") key that is not text")
                }
                // Yams refuses a key that appears twice in one mapping.
                map[name.string] = try value(of: item, path: path.isEmpty ? name.string : "\(path).\(name.string)")
            }
            return map
        case .alias:
            throw Problem(description: "aliases are not supported\(path.isEmpty ? "" : " (at '\(path)')")")
        }
    }

    /// An unquoted scalar's value: null, an integer, a decimal float, or the text itself.
    static func plainScalar(_ text: String) -> Any {
        switch text {
        case "", "~", "null", "Null", "NULL": return NSNull()
        default: break
        }
        if let n = integer(text) { return n }
        if let d = decimal(text) { return d }
        return text
    }

    /// `[-+]?digits` with single `_` between digits, `0x` hex or `0o` octal; nil if not one,
    /// or if it does not fit an `Int`.
    static func integer(_ text: String) -> Int? {
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
              body.allSatisfy({ $0 == "_" || $0.isHexDigit }),
              let magnitude = Int(body.filter { $0 != "_" }, radix: radix)
        else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// A decimal float such as `0.5`, `-1.25`, `1e3` or `2.5E-2`; nil for anything else
    /// (names such as `nan` or `inf` stay text).
    static func decimal(_ text: String) -> Double? {
        var sawDigit = false
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"): break
            default: return nil
            }
        }
        return sawDigit ? Double(text) : nil
    }
}
