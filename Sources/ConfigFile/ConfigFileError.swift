/// A configuration file (or flag) problem, naming the key it is about.
///
/// `key` is the full key path of the offending value: `limits.requests_burst`,
/// `target_connection.relay_policy.idle_timeout`, `trusted_proxies[2]` for a list item, or empty
/// for the document as a whole (shown as `(file)`). `problem` says what is wrong, without the key.
/// `description` is one line: `invalid configuration: port: 70000 is outside 0…65535`.
///
/// The one error type of every configuration reader: the game's (`ServeConfiguration`) and the
/// tunnel's (`TunnelConfiguration`) throw it, and so do the readers of this module.
public struct ConfigFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "invalid configuration: \(key.isEmpty ? "(file)" : Self.oneLine(key)): \(Self.oneLine(problem))" }

    /// Text from the file (a key can be any scalar, line breaks included) with its control
    /// characters escaped, so the message stays one line.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.properties.generalCategory == .control: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Key paths: `a.b` for a mapping's key, `a[3]` for a list's item.
public enum ConfigKeyPath {
    public static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    public static func item(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }
}
