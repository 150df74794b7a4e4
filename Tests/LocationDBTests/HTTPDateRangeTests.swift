import Foundation
@testable import LocationDB
import Testing
import TextFormats

/// The version date comes from a DNS TXT answer, so whatever a resolver sends reaches `HTTPDate.parse`:
/// out-of-range fields are refused (nil, "no usable TXT record") instead of trapping in `year - 1900`.
@Suite("HTTP dates from DNS answers")
struct HTTPDateRangeTests {
    @Test("years and clock fields outside their ranges are refused", arguments: [
        "Sat, 29 Oct -2147483648 05:59:54 GMT",  // Int32.min: year - 1900 overflowed
        "Sat, 29 Oct -2147481749 05:59:54 GMT",  // the largest year that still overflowed
        "Sat, 29 Oct 2147483647 05:59:54 GMT",  // Int32.max
        "Sat, 29 Oct 9223372036854775807 05:59:54 GMT",  // Int.max
        "Sat, 29 Oct 1969 05:59:54 GMT",
        "Sat, 29 Oct 10000 05:59:54 GMT",
        "Sat, 2147483647 Oct 2022 05:59:54 GMT",
        "Sat, 0 Oct 2022 05:59:54 GMT",
        "Sat, 29 Oct 2022 24:00:00 GMT",
        "Sat, 29 Oct 2022 -2147483648:00:00 GMT",
        "Sat, 29 Oct 2022 05:60:00 GMT",
        "Sat, 29 Oct 2022 05:59:61 GMT",
    ])
    func outOfRange(_ text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test("dates at the edges of the range still parse")
    func edges() {
        #expect(HTTPDate.parse("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        #expect(HTTPDate.parse("Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799)
        #expect(HTTPDate.parse(HTTPDate.format(1_667_023_194)) == 1_667_023_194)
    }

    @Test("a resolver answering with a year of Int32.min makes the version check fail, not trap", .timeLimit(.minutes(1)))
    func hostileAnswer() throws {
        for txt in ["Sat, 29 Oct -2147483648 05:59:54 GMT", "Sat, 29 Oct 9223372036854775807 05:59:54 GMT"] {
            let resolver = try LoopbackResolver(txt: txt)
            defer { resolver.stop() }
            #expect(throws: LocationDatabaseError.self) {
                try DatabaseVersionDiscovery.latestVersion(nameservers: ["127.0.0.1:\(resolver.port)"])
            }
        }
    }
}
