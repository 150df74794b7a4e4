import Foundation
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
        for (i, p) in bannedUserAgentPatterns.enumerated() where (try? NSRegularExpression(pattern: p)) == nil {
            throw RuleError(index: i, pattern: p)
        }
    }

    public struct RuleError: Error, CustomStringConvertible, Equatable {
        public var index: Int
        public var pattern: String
        public var description: String { "pattern \(index) '\(pattern)' is not a valid regular expression" }
    }
}

/// The current rules, swapped atomically on reload.
public final class RuleBook: Sendable {
    private struct Compiled {
        var rules: RequestRules
        var patterns: [NSRegularExpression]
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
        let patterns = rules.bannedUserAgentPatterns.compactMap { try? NSRegularExpression(pattern: "^(?:\($0))$", options: [.caseInsensitive]) }
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
            let range = NSRange(ua.startIndex..., in: ua)
            if c.patterns.contains(where: { $0.firstMatch(in: ua, range: range) != nil }) { return "user-agent" }
            return nil
        }
    }
}
