/// A value of a configuration document with its key path: the typed readers read the value as
/// the type a key expects and name the path in every problem.
///
/// Reading a null value is a problem ("expected a string"); a `ConfigMapping`'s lookups are the
/// place where a null value counts as absent.
public struct ConfigNode: Sendable, Equatable {
    public let path: String
    public let value: ConfigValue

    public init(_ value: ConfigValue, path: String = "") {
        self.value = value
        self.path = path
    }

    /// A problem with this value.
    public func error(_ problem: String) -> ConfigFileError { ConfigFileError(key: path, problem: problem) }

    public var isNull: Bool { value == .null }

    /// A scalar's text, whatever it spells; nil for null, a list or a mapping.
    public var text: String? {
        if case .scalar(let text) = value { return text }
        return nil
    }

    /// A scalar's text: a string, or a number or boolean as written.
    public func string() throws(ConfigFileError) -> String {
        if let text { return text }
        throw error(isNull ? "expected a string" : "expected a string, got \(value.shown)")
    }

    /// A string that is one of `choices`: "'x' is not one of a, b" otherwise.
    public func oneOf(_ choices: [String]) throws(ConfigFileError) -> String {
        let text = try string()
        guard choices.contains(text) else { throw error("'\(text)' is not one of \(choices.joined(separator: ", "))") }
        return text
    }

    /// `true yes on 1` / `false no off 0`, case-insensitive.
    public func bool() throws(ConfigFileError) -> Bool {
        guard let text, let value = ConfigSyntax.bool(text) else { throw error("expected true or false, got \(value.shown)") }
        return value
    }

    /// An integer (`ConfigSyntax.integer`).
    public func int() throws(ConfigFileError) -> Int {
        guard let text, let n = ConfigSyntax.integer(text) else { throw error("expected an integer, got \(value.shown)") }
        return n
    }

    /// An integer in `range`: "70000 is outside 0…65535" otherwise.
    public func int(in range: ClosedRange<Int>) throws(ConfigFileError) -> Int {
        let n = try int()
        guard range.contains(n) else { throw error("\(n) is outside \(range.lowerBound)…\(range.upperBound)") }
        return n
    }

    /// An integer of at least `minimum`: "must be at least 1, got 0" otherwise.
    public func int(atLeast minimum: Int) throws(ConfigFileError) -> Int {
        let n = try int()
        guard n >= minimum else { throw error("must be at least \(minimum), got \(n)") }
        return n
    }

    /// A finite number: an integer or a decimal float (`ConfigSyntax.decimal`).
    public func double() throws(ConfigFileError) -> Double {
        guard let text, let d = ConfigSyntax.decimal(text) else { throw error("expected a number, got \(value.shown)") }
        return d
    }

    /// A duration such as `10s` or `1m 30s` (`ConfigSyntax.duration`).
    public func duration() throws(ConfigFileError) -> Duration {
        guard let text else { throw error("expected a duration such as 10s, 500ms or 1m 30s, got \(value.shown)") }
        do { return try ConfigSyntax.duration(text) } catch { throw self.error(error.problem) }
    }

    /// A byte count such as `1048576`, `10mb` or `64kib` (`ConfigSyntax.byteCount`).
    public func byteCount() throws(ConfigFileError) -> UInt64 {
        guard let text else { throw error("expected a byte count such as 1048576, 10mb or 64kib, got \(value.shown)") }
        do { return try ConfigSyntax.byteCount(text) } catch { throw self.error(error.problem) }
    }

    /// A list's items, each with its path (`key[0]`, `key[1]`…).
    public func items() throws(ConfigFileError) -> [ConfigNode] {
        guard case .sequence(let items) = value else { throw error("expected a list, got \(value.shown)") }
        return items.enumerated().map { ConfigNode($1, path: ConfigKeyPath.item(path, $0)) }
    }

    /// A list of strings; one string is a list of one.
    public func strings() throws(ConfigFileError) -> [String] {
        switch value {
        case .scalar(let text): return [text]
        case .sequence:
            var out: [String] = []
            for item in try items() { out.append(try item.string()) }
            return out
        case .null, .mapping: throw error("expected a list of strings")
        }
    }

    /// A mapping, its keys with their paths.
    public func mapping() throws(ConfigFileError) -> ConfigMapping {
        guard case .mapping(let entries) = value else { throw error("expected a mapping") }
        return ConfigMapping(entries, path: path)
    }
}

/// A mapping of a configuration document with its key path. Lookups treat a key whose value is
/// null (`key:` or `key: ~`) as absent, so the optional readers return nil for it.
public struct ConfigMapping: Sendable, Equatable {
    public let path: String
    /// Keys in document order, each once.
    public let entries: [ConfigEntry]

    public init(_ entries: [ConfigEntry], path: String = "") {
        self.entries = entries
        self.path = path
    }

    /// The document's root as a mapping: "(file): expected a mapping of keys" otherwise;
    /// an empty document is an empty mapping.
    public init(document root: ConfigValue?) throws(ConfigFileError) {
        switch root {
        case nil, .null?: self.init([])
        case .mapping(let entries)?: self.init(entries)
        default: throw ConfigFileError(key: "", problem: "expected a mapping of keys")
        }
    }

    /// Reads a YAML document whose root is a mapping (`ConfigDocument.parse`); an empty document
    /// is an empty mapping.
    public init(yaml text: String, limits: ConfigDocument.Limits = ConfigDocument.Limits()) throws(ConfigFileError) {
        try self.init(document: try ConfigDocument.parse(text, limits: limits))
    }

    /// Every key with its value and path, null values included, in document order.
    public var nodes: [ConfigNode] { entries.map { ConfigNode($0.value, path: ConfigKeyPath.join(path, $0.key)) } }

    /// A problem with a key of this mapping.
    public func error(_ key: String, _ problem: String) -> ConfigFileError {
        ConfigFileError(key: ConfigKeyPath.join(path, key), problem: problem)
    }

    /// The first key not in `known` is a problem: "unknown key (known here: a, b, c)".
    public func checkKeys(_ known: Set<String>) throws(ConfigFileError) {
        for entry in entries where !known.contains(entry.key) {
            throw error(entry.key, "unknown key (known here: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// The key's value, nil when it is absent or null.
    public func node(_ key: String) -> ConfigNode? {
        guard let entry = entries.first(where: { $0.key == key }), entry.value != .null else { return nil }
        return ConfigNode(entry.value, path: ConfigKeyPath.join(path, key))
    }

    /// Whether the key is present with a value (null counts as absent).
    public func has(_ key: String) -> Bool { node(key) != nil }

    public func string(_ key: String) throws(ConfigFileError) -> String? { try node(key)?.string() }
    public func bool(_ key: String) throws(ConfigFileError) -> Bool? { try node(key)?.bool() }
    public func int(_ key: String) throws(ConfigFileError) -> Int? { try node(key)?.int() }
    public func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigFileError) -> Int? { try node(key)?.int(in: range) }
    public func int(_ key: String, atLeast minimum: Int) throws(ConfigFileError) -> Int? { try node(key)?.int(atLeast: minimum) }
    public func double(_ key: String) throws(ConfigFileError) -> Double? { try node(key)?.double() }
    public func duration(_ key: String) throws(ConfigFileError) -> Duration? { try node(key)?.duration() }
    public func byteCount(_ key: String) throws(ConfigFileError) -> UInt64? { try node(key)?.byteCount() }
    public func strings(_ key: String) throws(ConfigFileError) -> [String]? { try node(key)?.strings() }
    public func mapping(_ key: String) throws(ConfigFileError) -> ConfigMapping? { try node(key)?.mapping() }
}
