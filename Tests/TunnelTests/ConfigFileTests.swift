import ConfigFile
import Foundation
import IPQuestTestSupport
import Testing

@testable import Tunnel

/// The configuration reader shared by the game and the tunnel: the document, the readers, the
/// value syntaxes, and what a hostile file gets.
@Suite("ConfigFile")
struct ConfigFileTests {
    // MARK: the document

    @Test func emptyDocumentsAreNil() throws {
        #expect(try ConfigDocument.parse("") == nil)
        #expect(try ConfigDocument.parse("# only a comment\n\n") == nil)
        #expect(try ConfigMapping(yaml: "").entries.isEmpty)
    }

    @Test func scalarsStayTextAndOnlyPlainNullIsNull() throws {
        let root = try ConfigDocument.parse("""
            a: 0x10
            b: "0x10"
            c: ~
            d: 'null'
            e:
            f: yes
            g: !!int 12
            """)
        #expect(root == .mapping([
            ConfigEntry(key: "a", value: .scalar("0x10")), ConfigEntry(key: "b", value: .scalar("0x10")),
            ConfigEntry(key: "c", value: .null), ConfigEntry(key: "d", value: .scalar("null")),
            ConfigEntry(key: "e", value: .null), ConfigEntry(key: "f", value: .scalar("yes")),
            ConfigEntry(key: "g", value: .scalar("12")),
        ]))
    }

    @Test(arguments: [
        ("a: 1\na: 2\n", "not valid YAML: Parser: expected all keys to be unique but found the following duplicated key(s): 'a'."),
        ("a: [1\n", "not valid YAML: "),
        ("? [1, 2]\n: x\n", "keys must be text"),
        ("--- 1\n--- 2\n", "not valid YAML: "),
        ("a: &x 1\n", "anchors and aliases (&name, *name) are not supported (line 1)"),
        ("a: 1\nb: [2, *x]\n", "anchors and aliases (&name, *name) are not supported (line 2)"),
        ("a:\n  - &x\n    b: 1\n", "anchors and aliases (&name, *name) are not supported (line 2)"),
        ("? *x\n: 1\n", "anchors and aliases (&name, *name) are not supported (line 1)"),
        ("a: !!str &x b\n", "anchors and aliases (&name, *name) are not supported (line 1)"),
    ])
    func documentProblemsAreAboutTheFile(yaml: String, problem: String) {
        let error = #expect(throws: ConfigFileError.self) { try ConfigDocument.parse(yaml) }
        #expect(error?.key == "")
        #expect(error?.problem.hasPrefix(problem) == true, "\(String(describing: error))")
        #expect(error?.description.contains("\n") == false)
    }

    /// `*` and `&` inside scalars, quotes, comments and block scalars are text, not aliases.
    @Test func starsAndAmpersandsInTextAreNotAliases() throws {
        let root = try ConfigMapping(yaml: #"""
            patterns: [".*bot", 'a*b', "x &y", 'it''s *']
            list:
              - python-requests/.*
              - a&b
              - R&D *team*
            regex: x* # a *comment* &too
            # *x &y
            block: |
              *bold*
              &amp;
            folded: >-
              * item
            after: "*"
            """#)
        #expect(try root.strings("patterns") == [".*bot", "a*b", "x &y", "it's *"])
        #expect(try root.strings("list") == ["python-requests/.*", "a&b", "R&D *team*"])
        #expect(try root.string("regex") == "x*")
        #expect(try root.string("block") == "*bold*\n&amp;\n")
        #expect(try root.string("folded") == "* item")
        #expect(try root.string("after") == "*")
    }

    /// A billion laughs, and the same bomb used as a key (Yams would hash it while composing):
    /// refused at once.
    @Test func aliasBombsAreRefusedBeforeComposing() {
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (previous, name) in zip("abcdefghi", "bcdefghij") {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
        }
        let clock = ContinuousClock()
        for text in [bomb, bomb + "? *j\n: 1\n", bomb.replacingOccurrences(of: "\n", with: ", ").replacingOccurrences(of: "a: &a", with: "{a: &a") + "}"] {
            let elapsed = clock.measure {
                let error = #expect(throws: ConfigFileError.self) { try ConfigDocument.parse(text) }
                #expect(error?.problem.hasPrefix("anchors and aliases") == true)
            }
            #expect(elapsed < .seconds(1))
        }
    }

    @Test func nestingIsBounded() throws {
        // Within the limit.
        let ok = String(repeating: "[", count: 32) + "1" + String(repeating: "]", count: 32)
        #expect(try ConfigDocument.parse(ok) != nil)
        // Beyond it: refused with the path of the first value too deep, and far beyond libyaml's own limit.
        for depth in [33, 200, 999, 1_001, 50_000] {
            for text in [
                String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth),
                String(repeating: "{a: ", count: depth) + "1" + String(repeating: "}", count: depth),
                String(repeating: "- ", count: depth) + "1\n",
            ] {
                let error = #expect(throws: ConfigFileError.self) { try ConfigDocument.parse(text) }
                #expect(error.map { $0.problem.hasPrefix("nested deeper than 32 levels") || $0.problem.hasPrefix("not valid YAML") } == true)
            }
        }
    }

    @Test func sizeAndValueCountAreBounded() throws {
        let big = "a: \"" + String(repeating: "x", count: 1 << 20) + "\"\n"
        #expect(throws: ConfigFileError(key: "", problem: "larger than 1048576 bytes")) { try ConfigDocument.parse(big) }
        let many = "[" + Array(repeating: "1", count: 1_000).joined(separator: ",") + "]"
        #expect(throws: ConfigFileError(key: "", problem: "more than 100 values")) {
            try ConfigDocument.parse(many, limits: ConfigDocument.Limits(maxValues: 100))
        }
    }

    // MARK: readers

    @Test func readersNameTheKeyPath() throws {
        let root = try ConfigMapping(yaml: """
            limits:
              requests_burst: x
              burst: 70000
              floor: 0
              ratio: nan
              flag: sometimes
              list: [a, [b]]
              text: [a]
              wait: 10
              size: lots
            """)
        let limits = try #require(try root.mapping("limits"))
        func problem(_ read: (ConfigMapping) throws(ConfigFileError) -> Void) -> String? {
            do { try read(limits); return nil } catch { return error.description }
        }
        #expect(problem { m throws(ConfigFileError) in _ = try m.int("requests_burst", in: 1...100) }
            == "invalid configuration: limits.requests_burst: expected an integer, got 'x'")
        #expect(problem { m throws(ConfigFileError) in _ = try m.int("burst", in: 1...65_535) }
            == "invalid configuration: limits.burst: 70000 is outside 1…65535")
        #expect(problem { m throws(ConfigFileError) in _ = try m.int("floor", atLeast: 1) }
            == "invalid configuration: limits.floor: must be at least 1, got 0")
        #expect(problem { m throws(ConfigFileError) in _ = try m.double("ratio") }
            == "invalid configuration: limits.ratio: expected a number, got 'nan'")
        #expect(problem { m throws(ConfigFileError) in _ = try m.bool("flag") }
            == "invalid configuration: limits.flag: expected true or false, got 'sometimes'")
        #expect(problem { m throws(ConfigFileError) in _ = try m.strings("list") }
            == "invalid configuration: limits.list[1]: expected a string, got a list")
        #expect(problem { m throws(ConfigFileError) in _ = try m.string("text") }
            == "invalid configuration: limits.text: expected a string, got a list")
        #expect(problem { m throws(ConfigFileError) in _ = try m.duration("wait") }
            == "invalid configuration: limits.wait: '10' has no time unit (expected e.g. 10s, 500ms, 1m 30s)")
        #expect(problem { m throws(ConfigFileError) in _ = try m.byteCount("size") }
            == "invalid configuration: limits.size: 'lots' is not a byte count (expected e.g. 1048576, 10mb, 64kib)")
        #expect(problem { m throws(ConfigFileError) in try m.checkKeys(["burst"]) }
            == "invalid configuration: limits.requests_burst: unknown key (known here: burst)")
        #expect(problem { m throws(ConfigFileError) in _ = try m.node("flag")?.oneOf(["on", "off"]) }
            == "invalid configuration: limits.flag: 'sometimes' is not one of on, off")
        #expect(try root.int("absent") == nil)
        #expect(try limits.strings("absent") == nil)
    }

    @Test func readersReadOneSyntax() throws {
        let root = try ConfigMapping(yaml: """
            a: 1_000
            b: "0x1F"
            c: -0o17
            d: 2.5e-1
            e: "3"
            f: On
            g: "0"
            h: one
            i: 1m 30s
            j: 64 KiB
            k: ~
            """)
        #expect(try root.int("a") == 1_000 && root.int("b") == 31 && root.int("c") == -15)
        #expect(try root.double("d") == 0.25 && root.double("e") == 3)
        #expect(try root.bool("f") == true && root.bool("g") == false)
        #expect(try root.strings("h") == ["one"])
        #expect(try root.duration("i") == .seconds(90))
        #expect(try root.byteCount("j") == 65_536)
        #expect(try root.int("k") == nil && !root.has("k"))
        #expect(throws: ConfigFileError(key: "k", problem: "expected a string")) { try ConfigNode(.null, path: "k").string() }
    }

    @Test func integerSyntax() {
        #expect(ConfigSyntax.integer("-9223372036854775808") == Int.min)
        #expect(ConfigSyntax.integer("9223372036854775807") == Int.max)
        #expect(ConfigSyntax.integer("9223372036854775808") == nil)
        #expect(ConfigSyntax.integer("+-1") == nil)
        #expect(ConfigSyntax.integer("0x") == nil)
        #expect(ConfigSyntax.integer("١٢") == nil, "Arabic-Indic digits are not digits here")
        #expect(ConfigSyntax.decimal("1e999") == nil)
        #expect(ConfigSyntax.decimal(".5") == 0.5)
    }

    // MARK: fuzz

    static let structural = Array(":[]{}-,&*'\"#\n \t|>!?%".utf8)

    static let fragments: [String] = [
        "client_connection", "target_connection", "relay_policy", "idle_timeout", "max_connections", "denied_networks",
        "allowed_ports", "allowed_targets", "proxy_authorization", "users", "max_total_payload", "min_rate_bpm",
        "port", "limits", "rate_limit", "burst", "trusted_proxies", "datacenter", "routes",
        ": ", ":", "- ", "-", "? ", ", ", ",", "[", "]", "{", "}", "\n", "\n  ", "\n    ", "  ", "\t", "\r\n",
        "#", " # c", "|", ">-", "'", "\"", "\\", "\\u0000", "&a ", "*a", "&b", "*b", "!!str ", "!t ", "---\n", "...\n", "%YAML 1.2\n",
        "10s", "1m 30s", "500ms", "1day", "-1", "0", "0x1F", "0o7", "1_000", "1e3", "nan", ".inf", "yes", "off", "none",
        "~", "null", "''", "\"\"", "10.0.0.0/8", "::1", "443", "10mb", "64 KiB", "99999999999999999999999",
        "é", "🙂", "\u{0}", "\u{7F}", "\u{FEFF}", "(?i)^a$", "(",
    ]

    static let seedDocuments: [String] = [
        TunnelConfigurationTests.anchorConfig,
        "max_connections: 100\nclient_connection:\n  proxy_authorization:\n    users: {alice: s3cret}\n  relay_policy: {max_total_payload: 10mb}\n",
        "target_connection:\n  denied_networks: [\"10.0.0.0/8\", \"::1\"]\n  allowed_ports: [443, 8443]\n",
    ]

    /// Random and garbled documents: every one is read or refused with a one-line error, never a crash or a hang.
    @Test func fuzzedDocumentsAreReadOrRefused() {
        let seed = ProcessInfo.processInfo.environment["CONFIG_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("ConfigFile fuzz seed: \(seed) (CONFIG_FUZZ_SEED=\(seed) repeats it)")
        var random = SplitMix64(seed: seed)
        var accepted = 0
        for round in 0..<3_000 {
            let text = Self.garbled(&random, round: round)
            _ = try? ConfigDocument.parse(text)
            do {
                _ = try TunnelConfiguration(yaml: text)
                accepted += 1
            } catch {
                #expect(!error.description.contains("\n"), "seed \(seed) round \(round): \(text.debugDescription)")
            }
        }
        print("ConfigFile fuzz: \(accepted) of 3000 documents accepted by the tunnel")
    }

    /// A document of random fragments, or a valid one with random edits.
    static func garbled(_ random: inout SplitMix64, round: Int) -> String {
        if round % 2 == 0 {
            return (0..<(1 + random.below(40))).map { _ in fragments[random.below(fragments.count)] }.joined()
        }
        var bytes = Array(seedDocuments[random.below(seedDocuments.count)].utf8)
        for _ in 0..<(1 + random.below(6)) {
            guard !bytes.isEmpty else { break }
            let at = random.below(bytes.count)
            switch random.below(4) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(Self.structural[random.below(Self.structural.count)], at: at)
            case 2: bytes.insert(contentsOf: fragments[random.below(fragments.count)].utf8, at: at)
            default:
                let end = min(bytes.count, at + random.below(40))
                bytes.insert(contentsOf: bytes[at..<end], at: end)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
