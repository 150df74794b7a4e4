import Testing
@testable import Edge

/// User-agent and path rules (`RuleBook`), with the project's one regular-expression engine.
@Suite struct RequestRulesTests {
    @Test func userAgentPatternsMatchTheWholeValueIgnoringCase() throws {
        let book = try RuleBook(RequestRules(bannedUserAgents: ["exact-bot"], bannedUserAgentPatterns: ["python-requests/.*", "(curl|wget)/[0-9.]+"]))
        #expect(book.violation(userAgent: "python-requests/2.31", path: "/") == "user-agent")
        #expect(book.violation(userAgent: "Python-Requests/2.31", path: "/") == "user-agent", "case is ignored")
        #expect(book.violation(userAgent: "WGET/1.21", path: "/") == "user-agent")
        #expect(book.violation(userAgent: "my python-requests/2.31", path: "/") == nil, "the whole value, not a part of it")
        #expect(book.violation(userAgent: "curl/8.5 extra", path: "/") == nil)
        #expect(book.violation(userAgent: "exact-bot", path: "/") == "user-agent")
        #expect(book.violation(userAgent: "Mozilla/5.0", path: "/") == nil)
        #expect(book.violation(userAgent: nil, path: "/") == nil)
    }

    @Test func anInvalidPatternIsRefusedByName() {
        #expect(throws: RequestRules.RuleError(index: 1, pattern: "([unclosed")) {
            try RuleBook(RequestRules(bannedUserAgentPatterns: ["ok.*", "([unclosed"]))
        }
        #expect(!RequestRules.isValidPattern("(") && RequestRules.isValidPattern("a|b"))
    }

    @Test func replacingTheRulesTakesEffectAtOnce() throws {
        let book = try RuleBook(RequestRules(bannedPaths: ["/old"]))
        #expect(book.violation(userAgent: nil, path: "/old") == "path")
        try book.replace(RequestRules(bannedUserAgentPatterns: ["bad.*"]))
        #expect(book.violation(userAgent: nil, path: "/old") == nil)
        #expect(book.violation(userAgent: "badbot", path: "/") == "user-agent")
    }
}
