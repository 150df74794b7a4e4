import Testing
@testable import Edge

/// Issue 20, item 4: `//claim`, `/api//ip` and friends reached the routes while the guards,
/// matching the raw string, let them through. Every guard now sees the normal form.
@Suite struct RequestPathTests {
    @Test func spellingsTheRouterMatchesNormaliseToOnePath() {
        let cases: [(String, String)] = [
            ("/claim", "/claim"), ("//claim", "/claim"), ("/claim/", "/claim"), ("///claim//", "/claim"),
            ("//claim/NAME", "/claim/NAME"), ("//api/ip", "/api/ip"), ("/api//ip", "/api/ip"),
            ("/./claim", "/claim"), ("/x/../claim", "/claim"), ("/../../claim", "/claim"), ("/%63laim", "/claim"),
            ("/cl%61im/%2e%2E/claim", "/claim"), ("/claim?name=x", "/claim"), ("/wp-admin%2Fx", "/wp-admin%2Fx"),
            ("/a%2fb", "/a%2Fb"), ("/", "/"), ("", "/"), ("//", "/"), ("/%", "/%"), ("/%zz", "/%zz"),
            ("/players/.../x", "/players/.../x"),
        ]
        for (raw, normal) in cases {
            #expect(RequestPath.normalized(raw) == normal, "\(raw)")
        }
    }

    @Test func normalPathsComeBackUnchanged() {
        for path in ["/", "/claim", "/api/leaderboard", "/players/a.b", "/x/.y", "/..x"] {
            #expect(RequestPath.isNormal(Array(path.utf8)), "\(path)")
            #expect(RequestPath.normalized(path) == path)
        }
    }

    @Test func pathBansAndDataCenterRulesSeeTheNormalForm() throws {
        let book = try RuleBook(RequestRules(bannedPaths: ["/wp-admin*", "/claim"]))
        for raw in ["//wp-admin/x", "/./wp-admin", "/%77p-admin", "//claim", "/claim/"] {
            #expect(book.violation(userAgent: nil, path: RequestPath.normalized(raw)) == "path", "\(raw)")
        }
        let policy = DataCenterPolicy(defaultAction: .tag, routes: ["/claim": .deny])
        for raw in ["//claim", "//claim/NAME", "/x/../claim"] {
            #expect(policy.action(for: RequestPath.normalized(raw)) == .deny, "\(raw)")
        }
    }
}
