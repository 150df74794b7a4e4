import Metrics
import Synchronization

/// User-agent and path bans. Replaced as a whole on reload (SIGHUP), never edited in place.
public struct RequestRules: Sendable, Equatable {
    public var bannedUserAgents: Set<String> = []
    /// Regular expressions matched against the whole User-Agent value (case-insensitive).
    public var bannedUserAgentPatterns: [String] = []
    /// Exact paths, or prefixes when they end with `*`.
    public var bannedPaths: [String] = []

    public init(bannedUserAgents: Set<String> = [], bannedUserAgentPatterns: [String] = [], bannedPaths: [String] = []) {
        self.bannedUserAgents = bannedUserAgents
        self.bannedUserAgentPatterns = bannedUserAgentPatterns
        self.bannedPaths = bannedPaths
    }

    /// Checks that every pattern compiles; the error names the bad one.
    public func validate() throws(RuleError) {
        for (i, p) in bannedUserAgentPatterns.enumerated() where !Self.isValidPattern(p) {
            throw RuleError(index: i, pattern: p)
        }
    }

    /// Whether `pattern` is a regular expression (Swift's `Regex` syntax, the one engine of the
    /// project: the tunnel's target patterns use it too).
    public static func isValidPattern(_ pattern: String) -> Bool { (try? Regex(pattern)) != nil }

    /// A user-agent pattern, matched against the whole value, ignoring case.
    static func compile(_ pattern: String) -> Regex<AnyRegexOutput>? { try? Regex(pattern).ignoresCase() }

    public struct RuleError: Error, CustomStringConvertible, Equatable {
        public var index: Int
        public var pattern: String
        public var description: String { "pattern \(index) '\(pattern)' is not a valid regular expression" }
    }
}

/// The current rules, swapped atomically on reload.
public final class RuleBook: Sendable {
    /// Regex values are immutable once built and matching does not mutate them (the tunnel's
    /// `TargetPattern` relies on the same).
    private struct Compiled: @unchecked Sendable {
        var rules: RequestRules
        var patterns: [Regex<AnyRegexOutput>]
        var exactPaths: Set<String>
        var pathPrefixes: [String]
    }

    private let state: Mutex<Compiled>
    private let reloads = Counter(label: "ipquest_rules_reloads_total")

    public init(_ rules: RequestRules = .init()) throws(RequestRules.RuleError) {
        state = Mutex(try RuleBook.compile(rules))
    }

    private static func compile(_ rules: RequestRules) throws(RequestRules.RuleError) -> Compiled {
        try rules.validate()
        let patterns = rules.bannedUserAgentPatterns.compactMap(RequestRules.compile)
        return Compiled(
            rules: rules,
            patterns: patterns,
            exactPaths: Set(rules.bannedPaths.filter { !$0.hasSuffix("*") }),
            pathPrefixes: rules.bannedPaths.filter { $0.hasSuffix("*") }.map { String($0.dropLast()) }
        )
    }

    public func replace(_ rules: RequestRules) throws(RequestRules.RuleError) {
        let compiled = try RuleBook.compile(rules)
        state.withLock { $0 = compiled }
        reloads.increment()
    }

    public var rules: RequestRules { state.withLock { $0.rules } }

    /// Why a request is banned, or nil.
    public func violation(userAgent: String?, path: String) -> String? {
        state.withLock { c in
            if c.exactPaths.contains(path) || c.pathPrefixes.contains(where: { path.hasPrefix($0) }) { return "path" }
            guard let ua = userAgent else { return nil }
            if c.rules.bannedUserAgents.contains(ua) { return "user-agent" }
            if c.patterns.contains(where: { (try? $0.wholeMatch(in: ua)) != nil }) { return "user-agent" }
            return nil
        }
    }
}
