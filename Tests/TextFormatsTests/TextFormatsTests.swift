import Foundation
import Testing
import TextFormats

@Suite struct HTTPDateTests {
    @Test func formatsIMFFixdates() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_795_392_000) == "Mon, 23 Nov 2026 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400 + 3_723) == "Tue, 29 Feb 2000 01:02:03 GMT")
    }

    /// Every second of a few seeded spans parses back to itself; other spellings do not parse.
    @Test func parsesWhatItFormats() {
        var seed: UInt64 = 20_261_203
        print("HTTPDateTests seed \(seed)")
        for _ in 0..<2_000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let t = seed >> 33 % 253_402_300_799
            #expect(HTTPDate.parse(HTTPDate.format(t)) == t)
        }
        for bad in ["", "Thu, 01 Jan 1970 00:00:00", "Thursday, 01-Jan-70 00:00:00 GMT", "Thu Jan  1 00:00:00 1970",
                    "Thu, 01 Foo 1970 00:00:00 GMT", "Thu, 01 Jan 1970 00:00 GMT", "Thu, xx Jan 1970 00:00:00 GMT"] {
            #expect(HTTPDate.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func nowIsTheCurrentSecond() {
        let before = UInt64(Date().timeIntervalSince1970)
        let parsed = HTTPDate.parse(HTTPDate.now())
        let after = UInt64(Date().timeIntervalSince1970)
        #expect(parsed.map { $0 + 1 >= before && $0 <= after } == true)
    }
}

@Suite struct JSONTextTests {
    @Test func escapesWhatJSONAndHTMLNeed() {
        #expect(JSONText.quoted("plain") == "\"plain\"")
        #expect(JSONText.quoted("a\"b\\c\nd\re\tf") == "\"a\\\"b\\\\c\\nd\\re\\tf\"")
        #expect(JSONText.quoted("<a&b>") == "\"\\u003ca\\u0026b\\u003e\"")
        #expect(JSONText.quoted("\u{1}\u{7F}\u{2028}\u{2029}") == "\"\\u0001\\u007f\\u2028\\u2029\"")
        #expect(JSONText.quoted("Zoë 🏁") == "\"Zoë 🏁\"")
        #expect(JSONText.quoted(nil as String?) == "null")
        #expect(JSONText.needsNoEscaping("a/b:c@d") && !JSONText.needsNoEscaping("é") && !JSONText.needsNoEscaping("<"))
    }

    /// Whatever the text, JSONSerialization reads the literal back to it (seeded).
    @Test func roundTripsThroughAJSONParser() throws {
        var seed: UInt64 = 424_242
        print("JSONTextTests seed \(seed)")
        let alphabet: [Unicode.Scalar] = ["a", "\"", "\\", "<", ">", "&", "\n", "\u{0}", "\u{1F}", "\u{7F}", "\u{2028}", "é", "🏁", " ", "/"]
        for _ in 0..<2_000 {
            var text = ""
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            for i in 0..<Int(seed >> 60) { text.unicodeScalars.append(alphabet[Int((seed >> UInt64(i * 4)) & 0xF) % alphabet.count]) }
            let literal = JSONText.quoted(text)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
            #expect(decoded == [text], "\(literal)")
        }
    }
}

@Suite struct FNV1aTests {
    /// The published FNV-1a test vectors.
    @Test func matchesTheReferenceVectors() {
        #expect(FNV1a.hash64("".utf8) == 0xCBF2_9CE4_8422_2325)
        #expect(FNV1a.hash64("a".utf8) == 0xAF63_DC4C_8601_EC8C)
        #expect(FNV1a.hash64("foobar".utf8) == 0x8594_4171_F739_67E8)
        #expect(FNV1a.hash32("".utf8) == 0x811C_9DC5)
        #expect(FNV1a.hash32("a".utf8) == 0xE40C_292C)
        #expect(FNV1a.hash32("foobar".utf8) == 0xBF9C_F968)
        #expect(FNV1a.hex64("a".utf8) == "af63dc4c8601ec8c" && FNV1a.hex64("".utf8).count == 16)
    }
}

@Suite struct ASCIISpacesTests {
    @Test func trimsSpacesAndTabsOnly() {
        #expect(" \t a b \t ".trimmingSpacesAndTabs == "a b")
        #expect("\u{A0}x\n".trimmingSpacesAndTabs == "\u{A0}x\n")
        #expect("   ".trimmingSpacesAndTabs == "")
        #expect(Substring("x").trimmingSpacesAndTabs == "x")
    }
}

@Suite struct UniqueIDTests {
    @Test func idsAreSixteenHexDigitsAndDistinct() {
        for value: UInt64 in [0, 1, 0xABC, 0xDEAD_BEEF_0000_0001, .max] {
            let expected = String(repeating: "0", count: 16 - String(value, radix: 16).count) + String(value, radix: 16)
            #expect(UniqueID.hex(value) == expected)
        }
        let ids = (0..<10_000).map { _ in UniqueID.next() }
        #expect(Set(ids).count == ids.count)
        #expect(UniqueID.nextHex().utf8.count == 16)
    }
}
