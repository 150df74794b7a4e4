import Foundation
import LocationDB
import Testing

/// `WatchedLocationDatabase`: a long-running reader that follows the file on disk.
@Suite struct WatchedDatabaseTests {
    static func write(_ path: String, country: String, createdAt: UInt64) throws {
        var writer = DatabaseWriter()
        writer.createdAt = createdAt
        writer.addCountry(Country(code: CountryCode(country)!, continentCode: CountryCode("EU")!, name: country))
        try writer.addNetwork(IPPrefix(parsing: "192.0.2.0/24"), properties: NetworkProperties(countryCode: CountryCode(country)!, asn: 64500))
        try writer.write(to: path + ".tmp")
        #expect(rename(path + ".tmp", path) == 0)
    }

    @Test func followsAtomicReplacementsAndKeepsTheLastGoodDatabase() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db"
        try Self.write(path, country: "DE", createdAt: 1)
        let watched = try WatchedLocationDatabase(path: path)
        let address = IPAddress("192.0.2.7")!
        #expect(watched.current?.lookup(address)?.properties.countryCode == CountryCode("DE"))
        #expect(watched.reloadIfChanged() == .unchanged)

        // A reader holding the old database keeps using it after the swap.
        let old = try #require(watched.current)
        try Self.write(path, country: "FR", createdAt: 2)
        #expect(watched.reloadIfChanged() == .reloaded)
        #expect(watched.current?.lookup(address)?.properties.countryCode == CountryCode("FR"))
        #expect(old.lookup(address)?.properties.countryCode == CountryCode("DE"))

        // Garbage, then a missing file: reported, and FR stays in service.
        try Data("this is not a location database".utf8).write(to: URL(fileURLWithPath: path + ".bad"))
        #expect(rename(path + ".bad", path) == 0)
        #expect(watched.reloadIfChanged() == .failed(.badMagic))
        #expect(watched.lastError == .badMagic)
        #expect(watched.reloadIfChanged() == .unchanged, "a broken file is reported once")
        try FileManager.default.removeItem(atPath: path)
        if case .failed = watched.reloadIfChanged() {} else { Issue.record("a vanished file is a failure") }
        #expect(watched.current?.lookup(address)?.properties.countryCode == CountryCode("FR"))

        // And a good file again.
        try Self.write(path, country: "DE", createdAt: 3)
        #expect(watched.reloadIfChanged() == .reloaded && watched.lastError == nil)
        #expect(watched.current?.createdAt == 3)
    }

    @Test func aMissingFileAtStartIsAnError() {
        #expect(throws: LocationDatabaseError.self) { try WatchedLocationDatabase(path: "/no/such/location.db") }
    }
}
