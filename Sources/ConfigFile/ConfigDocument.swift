import Yams

/// A configuration document as a tree of text: what a YAML file says, before any key is read.
///
/// Scalars stay text (quoted or not) and each reader of `ConfigNode` reads the type it expects, so
/// `port: "8080"` and `port: 8080` mean the same while `name: 0x10` stays the name `0x10`. Only a
/// plain (unquoted) `~`, `null` or nothing is null; a quoted `"null"` is the text `null`.
public enum ConfigValue: Sendable, Equatable {
    case null
    case scalar(String)
    case sequence([ConfigValue])
    /// Keys in document order; a key appears once.
    case mapping([ConfigEntry])

    /// How the value is shown in a problem: `'text'`, `nothing`, `a list`, `a mapping`.
    public var shown: String {
        switch self {
        case .null: "nothing"
        case .scalar(let text): "'\(text)'"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }
}

/// One key of a mapping and its value.
public struct ConfigEntry: Sendable, Equatable {
    public var key: String
    public var value: ConfigValue
    public init(key: String, value: ConfigValue) {
        self.key = key
        self.value = value
    }
}

/// Reads a YAML document into a `ConfigValue`, refusing what a configuration file never needs and
/// a hostile one would use.
///
/// - At most `Limits.maxBytes` of text, `Limits.maxDepth` levels of nesting and `Limits.maxValues`
///   values (libyaml's own nesting limit is 1000, and Yams composes recursively).
/// - No anchors (`&name`) or aliases (`*name`): a few lines of them make a document of billions of
///   values ("billion laughs"), and Yams compares mapping keys as whole trees, so an alias used as a
///   key is expanded while the document is still being read. The text is scanned for them before
///   Yams reads it (a line of a multi-line plain scalar or block scalar that starts with `*` or `&`
///   is refused too: quote it), and the tree is checked again after.
/// - One document; keys are text and appear once.
///
/// Yams composes with no resolver rules: its default rules are regular expressions whose first use
/// pages in ICU for the life of the process.
public enum ConfigDocument {
    public struct Limits: Sendable {
        public var maxBytes: Int
        public var maxDepth: Int
        public var maxValues: Int
        public init(maxBytes: Int = 1 << 20, maxDepth: Int = 32, maxValues: Int = 100_000) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.maxValues = maxValues
        }
    }

    /// The document's tree; nil for an empty document (nothing, or only comments).
    /// Every problem is a `ConfigFileError`, with an empty key when it is about the whole file.
    public static func parse(_ text: String, limits: Limits = Limits()) throws(ConfigFileError) -> ConfigValue? {
        guard text.utf8.count <= limits.maxBytes else {
            throw ConfigFileError(key: "", problem: "larger than \(limits.maxBytes) bytes")
        }
        if let line = AnchorScan.firstAnchorOrAlias(in: text) {
            throw ConfigFileError(key: "", problem: "anchors and aliases (&name, *name) are not supported (line \(line))")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, .basic, .default, .utf8)
        } catch {
            // Yams' message goes on to quote the document: its first line says what and where.
            let first = String(describing: error).split(separator: "\n").first.map(String.init) ?? ""
            throw ConfigFileError(key: "", problem: "not valid YAML: \(first)")
        }
        guard let root else { return nil }
        var budget = limits.maxValues
        return try value(of: root, path: "", depth: 0, budget: &budget, limits: limits)
    }

    private static func value(
        of node: Node, path: String, depth: Int, budget: inout Int, limits: Limits
    ) throws(ConfigFileError) -> ConfigValue {
        budget -= 1
        guard budget >= 0 else { throw ConfigFileError(key: "", problem: "more than \(limits.maxValues) values") }
        guard depth <= limits.maxDepth else {
            throw ConfigFileError(key: path, problem: "nested deeper than \(limits.maxDepth) levels")
        }
        if node.anchor != nil {
            throw ConfigFileError(key: path, problem: "anchors and aliases (&name, *name) are not supported")
        }
        switch node {
        case .scalar(let scalar):
            return scalar.style == .plain && ConfigSyntax.nullSpellings.contains(scalar.string) ? .null : .scalar(scalar.string)
        case .sequence(let sequence):
            var items: [ConfigValue] = []
            items.reserveCapacity(sequence.count)
            for (index, item) in sequence.enumerated() {
                items.append(try value(of: item, path: ConfigKeyPath.item(path, index), depth: depth + 1, budget: &budget, limits: limits))
            }
            return .sequence(items)
        case .mapping(let mapping):
            var entries: [ConfigEntry] = []
            var seen: Set<String> = []
            for (key, item) in mapping {
                guard case .scalar(let name) = key, key.anchor == nil else {
                    throw ConfigFileError(key: path, problem: "keys must be text")
                }
                let itemPath = ConfigKeyPath.join(path, name.string)
                guard seen.insert(name.string).inserted else { throw ConfigFileError(key: itemPath, problem: "appears twice") }
                entries.append(ConfigEntry(
                    key: name.string, value: try value(of: item, path: itemPath, depth: depth + 1, budget: &budget, limits: limits)))
            }
            return .mapping(entries)
        case .alias:
            throw ConfigFileError(key: path, problem: "anchors and aliases (&name, *name) are not supported")
        }
    }
}

/// Finds `&name` and `*name` where a YAML node starts, without parsing: after indentation, `- `,
/// `? `, `: `, `[`, `{`, `,` or a tag, outside quoted scalars, comments and block scalars. A plain
/// scalar cannot start with `&` or `*`, so in a valid document that is an anchor or an alias (or
/// the continuation line of a multi-line plain scalar, refused too).
enum AnchorScan {
    /// The 1-based line of the first anchor or alias, or nil.
    static func firstAnchorOrAlias(in text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "&")) || bytes.contains(UInt8(ascii: "*")) else { return nil }
        enum Quote { case none, single, double }
        var quote = Quote.none
        var flowDepth = 0
        var line = 1
        var index = 0
        // Lines indented more than this belong to a block scalar (`|`, `>`) and are not scanned.
        var blockScalarParent: Int?
        let count = bytes.count
        func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }
        func isBreakOrBlank(_ i: Int) -> Bool { i >= count || bytes[i] == 0x0A || isBlank(bytes[i]) }

        while index < count {
            // A line starts at `index`.
            var indent = 0
            while index + indent < count, bytes[index + indent] == 0x20 { indent += 1 }
            var i = index + indent
            var lineEnd = i
            while lineEnd < count, bytes[lineEnd] != 0x0A { lineEnd += 1 }
            defer {
                index = lineEnd + 1
                line += 1
            }
            if quote == .none, let parent = blockScalarParent {
                var blank = true
                for j in i..<lineEnd where !isBlank(bytes[j]) { blank = false; break }
                if blank || indent > parent { continue }
                blockScalarParent = nil
            }
            var nodeStart = quote == .none
            scan: while i < lineEnd {
                let b = bytes[i]
                switch quote {
                case .double:
                    if b == UInt8(ascii: "\\") { i += 2; continue scan }
                    if b == UInt8(ascii: "\"") { quote = .none; nodeStart = false }
                    i += 1
                    continue scan
                case .single:
                    if b == UInt8(ascii: "'") {
                        if i + 1 < lineEnd, bytes[i + 1] == UInt8(ascii: "'") { i += 2; continue scan }
                        quote = .none
                        nodeStart = false
                    }
                    i += 1
                    continue scan
                case .none:
                    break
                }
                if isBlank(b) { i += 1; continue scan }
                let afterBlank = i == index || isBlank(bytes[i - 1])
                if nodeStart {
                    switch b {
                    case UInt8(ascii: "&"), UInt8(ascii: "*"):
                        return line
                    case UInt8(ascii: "\""): quote = .double
                    case UInt8(ascii: "'"): quote = .single
                    case UInt8(ascii: "#") where afterBlank: break scan
                    case UInt8(ascii: "|"), UInt8(ascii: ">"):
                        if flowDepth == 0 {
                            blockScalarParent = indent
                            break scan
                        }
                        nodeStart = false
                    case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"):
                        if isBreakOrBlank(i + 1) { i += 1; continue scan }
                        // `---` starts a document; anything else is a plain scalar.
                        if b == UInt8(ascii: "-"), i == index, i + 2 < count, bytes[i + 1] == b, bytes[i + 2] == b, isBreakOrBlank(i + 3) {
                            i += 3
                            continue scan
                        }
                        nodeStart = false
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        flowDepth += 1
                    case UInt8(ascii: "]"), UInt8(ascii: "}"):
                        flowDepth = max(0, flowDepth - 1)
                        nodeStart = false
                    case UInt8(ascii: ","):
                        break
                    case UInt8(ascii: "!"):
                        // A tag: the node follows it.
                        while i < lineEnd, !isBlank(bytes[i]) { i += 1 }
                        continue scan
                    default:
                        nodeStart = false
                    }
                    i += 1
                    continue scan
                }
                // Inside a plain scalar or after a node.
                switch b {
                case UInt8(ascii: "#") where afterBlank:
                    break scan
                case UInt8(ascii: ":") where isBreakOrBlank(i + 1) || flowDepth > 0:
                    nodeStart = true
                case UInt8(ascii: ",") where flowDepth > 0:
                    nodeStart = true
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if flowDepth > 0 { flowDepth -= 1 }
                default:
                    break
                }
                i += 1
            }
        }
        return nil
    }
}
