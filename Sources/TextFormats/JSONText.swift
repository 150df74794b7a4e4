/// JSON string literals for hand-written JSON (API bodies, log lines, command output): one
/// escaping for all of them. Besides what JSON requires (`"`, `\`, controls), `<`, `>` and `&`
/// are escaped so a body can be inlined in HTML, and DEL, U+2028 and U+2029 so a line stays
/// one line for every reader.
public enum JSONText {
    /// True when `quoted(s)` is `s` in quotes: printable ASCII without the characters above.
    @inlinable
    public static func needsNoEscaping(_ s: String) -> Bool {
        s.utf8.allSatisfy(isPlain)
    }

    /// True for a byte written as itself: printable ASCII without the characters above.
    @inlinable
    public static func isPlain(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
            && byte != UInt8(ascii: "<") && byte != UInt8(ascii: ">") && byte != UInt8(ascii: "&")
    }

    /// `s` as a JSON string literal, quotes included.
    public static func quoted(_ s: String) -> String {
        if needsNoEscaping(s) { return "\"" + s + "\"" }
        var out = ""
        append(s, to: &out)
        return out
    }

    /// `s` as a JSON literal, or `null` for nil.
    public static func quoted(_ s: String?) -> String {
        s.map { quoted($0) } ?? "null"
    }

    /// Appends `s` as a JSON string literal, copying unescaped runs whole.
    public static func append(_ s: String, to out: inout String) {
        out += "\""
        let scalars = s.unicodeScalars
        var plainStart = scalars.startIndex
        var index = plainStart
        while index < scalars.endIndex {
            if let escape = escape(scalars[index]) {
                out.unicodeScalars.append(contentsOf: scalars[plainStart..<index])
                out += escape
                plainStart = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        out += "\""
    }

    static func escape(_ scalar: Unicode.Scalar) -> String? {
        switch scalar {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "<", ">", "&":
            return unicodeEscape(scalar.value)
        case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029:
            return unicodeEscape(scalar.value)
        default:
            return nil
        }
    }

    static func unicodeEscape(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
