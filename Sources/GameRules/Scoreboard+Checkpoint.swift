/// The board's fields in a checkpoint file (`BoardCheckpoint`), in one fixed order. Arrays of
/// plain values (address slots, totals, the log) are written as they are in memory; maps as
/// counted lists of pairs. Reading checks every index the board will later use (player
/// names, origins, providers, cursors), so even a file with a valid hash but wrong content
/// is refused rather than trusted.
extension Scoreboard {
    func encode(into out: inout CheckpointWriter) {
        out.i64(storagePosition)
        out.u64(version)
        for v in periodVersions { out.u64(v) }
        out.i64(latestTime)
        for c in cutoff { out.i64(c) }
        for c in cursor { out.count(c) }

        out.count(names.count)
        for name in names { out.string(name.value) }
        out.count(providers.count)
        for provider in providers { out.string(provider) }
        out.count(origins.count)
        out.raw(origins)

        out.count(addresses.pages.count)
        out.count(addresses.count)
        for (key, page) in addresses.pages {
            out.u32(key)
            out.u16(UInt16(page.count))
            out.raw(page)
        }

        for map in counts { Self.encodePairs(map, &out) }
        out.count(totals.dense.count)
        out.raw(totals.dense)
        for map in totals.sparse { Self.encodePairs(map, &out) }
        for n in playersInSlot { out.count(n) }
        for n in addressesInSlot { out.count(n) }

        out.raw(byCountry.sole)
        out.count(byCountry.maps.count)
        for (country, map) in byCountry.maps {
            out.u16(country)
            Self.encodePairs(map, &out)
        }
        out.raw(byAS.sole)
        out.count(byAS.maps.count)
        for (asn, map) in byAS.maps {
            out.u32(asn)
            Self.encodePairs(map, &out)
        }
        // Countries per player, which the board no longer keeps (they are read from the
        // per-country counts): written empty, so the format stays the same both ways.
        out.count(0)
        Self.encodePairs(dataCenterOfPlayer, &out)

        out.count(log.count)
        out.raw(log)
        out.count(recentRing.count)
        out.raw(recentRing)

        out.count(heldChanges.count)
        for (day, changes) in heldChanges {
            out.i32(day)
            Self.encodePairs(changes, &out)
        }
    }

    private static func encodePairs(_ map: CountMap, _ out: inout CheckpointWriter) {
        out.count(map.count)
        for (key, value) in map {
            out.u32(key)
            out.i32(value)
        }
    }

    init(decoding input: inout CheckpointReader) throws {
        self.init()
        func refuse(_ reason: String) -> BoardCheckpoint.Refused { BoardCheckpoint.Refused(reason: reason) }
        let periods = Period.allCases.count
        storagePosition = try input.i64()
        version = try input.u64()
        periodVersions = try (0..<periods).map { _ in try input.u64() }
        latestTime = try input.i64()
        cutoff = try (0..<periods).map { _ in try input.i64() }
        let cursors = try (0..<periods).map { _ in try input.u64() }

        let nameCount = try input.count(elementSize: 4)
        names.reserveCapacity(nameCount)
        nameIDs.reserveCapacity(nameCount, names: names)
        for id in 0..<nameCount {
            let text = try input.string()
            guard nameIDs.find(text, in: names) == nil else { throw refuse("player '\(text)' appears twice") }
            names.append(PlayerName(trusted: text))
            nameIDs.insert(UInt32(id), names: names)
        }
        let providerCount = try input.count(elementSize: 4)
        for id in 0..<providerCount {
            let provider = try input.string()
            providers.append(provider)
            providerIDs[provider] = UInt16(truncatingIfNeeded: id + 1)
        }
        let originCount = try input.count(elementSize: MemoryLayout<PackedOrigin>.stride)
        guard originCount >= 1 else { throw refuse("no origin table") }
        origins = try input.raw(originCount, as: PackedOrigin.self)
        originIDs = [:]
        originIDs.reserveCapacity(originCount)
        for (id, origin) in origins.enumerated() {
            guard Int(origin.provider) <= providers.count else { throw refuse("an origin names provider \(origin.provider) of \(providers.count)") }
            originIDs[origin] = UInt32(id)
        }

        let pageCount = try input.count(elementSize: 6)
        let addressCount = try input.count(elementSize: 12)
        var pages: [UInt32: [AddressPages.Slot]] = [:]
        pages.reserveCapacity(pageCount)
        var seen = 0
        for _ in 0..<pageCount {
            let key = try input.u32()
            let n = Int(try input.u16())
            guard key <= 0xFF_FFFF, (1...256).contains(n) else { throw refuse("page \(key) of \(n) slots") }
            let page = try input.raw(n, as: AddressPages.Slot.self)
            var previous = -1
            for slot in page {
                guard Int(slot.octet) > previous, slot.name < nameCount, Int(slot.origin) < originCount else {
                    throw refuse("page \(key) holds a slot out of order or naming an unknown player or origin")
                }
                previous = Int(slot.octet)
            }
            guard pages.updateValue(page, forKey: key) == nil else { throw refuse("page \(key) appears twice") }
            seen += n
        }
        guard seen == addressCount else { throw refuse("\(seen) addresses in pages, \(addressCount) announced") }
        addresses = AddressPages(pages: pages, count: addressCount)

        for i in counts.indices { counts[i] = try Self.decodePairs(&input, names: nameCount) }
        let totalCount = try input.count(elementSize: 4)
        guard totalCount == nameCount * PlayerTotals.denseSlots else { throw refuse("\(totalCount) totals for \(nameCount) players") }
        let dense = try input.raw(totalCount, as: Int32.self)
        let sparse = try (PlayerTotals.denseSlots..<Self.slots).map { _ in try Self.decodePairs(&input, names: nameCount) }
        totals = PlayerTotals(dense: dense, sparse: sparse)
        playersInSlot = try (0..<Self.slots).map { _ in Int(try input.u64()) }
        addressesInSlot = try (0..<Self.slots).map { _ in Int(try input.u64()) }

        // Per player its one country and AS (0: none; the maximum: spread over the maps).
        let soleCountry = try input.raw(nameCount, as: UInt16.self)
        var countryMaps: [UInt16: CountMap] = [:]
        for _ in 0..<(try input.count(elementSize: 10)) {
            let country = try input.u16()
            guard countryMaps.updateValue(try Self.decodePairs(&input, names: nameCount), forKey: country) == nil else { throw refuse("country \(country) appears twice") }
        }
        let soleAS = try input.raw(nameCount, as: UInt32.self)
        var systemMaps: [UInt32: CountMap] = [:]
        for _ in 0..<(try input.count(elementSize: 12)) {
            let asn = try input.u32()
            guard systemMaps.updateValue(try Self.decodePairs(&input, names: nameCount), forKey: asn) == nil else { throw refuse("AS \(asn) appears twice") }
        }
        // A player has an area exactly when it holds addresses.
        for id in 0..<nameCount where (soleCountry[id] == 0) != (totals[0, UInt32(id)] == 0) || (soleAS[id] == 0) != (totals[0, UInt32(id)] == 0) {
            throw refuse("player \(id) has areas that do not match its addresses")
        }
        guard let countries = AreaCounts(sole: soleCountry, maps: countryMaps), let systems = AreaCounts(sole: soleAS, maps: systemMaps) else {
            throw refuse("area counts name players that are not spread over areas")
        }
        byCountry = countries
        byAS = systems
        for _ in 0..<(try input.count(elementSize: 12)) {
            let name = try input.u32()
            guard name < nameCount else { throw refuse("country counts for unknown player \(name)") }
            for _ in 0..<(try input.count(elementSize: 6)) {
                _ = try input.u16()
                _ = try input.i32()
            }
        }
        dataCenterOfPlayer = try Self.decodePairs(&input, names: nameCount)

        log = try input.raw(try input.count(elementSize: MemoryLayout<LogEntry>.stride), as: LogEntry.self)
        recentRing = try input.raw(try input.count(elementSize: MemoryLayout<LogEntry>.stride), as: LogEntry.self)
        cursor = try cursors.map { c -> Int in
            guard c <= UInt64(log.count) else { throw refuse("a period cursor past the log") }
            return Int(c)
        }

        for _ in 0..<(try input.count(elementSize: 12)) {
            let day = try input.i32()
            guard heldChanges.updateValue(try Self.decodePairs(&input, names: nameCount), forKey: day) == nil else {
                throw refuse("history day \(day) appears twice")
            }
        }
    }

    private static func decodePairs(_ input: inout CheckpointReader, names: Int) throws -> CountMap {
        let n = try input.count(elementSize: 8)
        var map = CountMap(minimumCapacity: n)
        for _ in 0..<n {
            let key = try input.u32()
            guard key < names else { throw BoardCheckpoint.Refused(reason: "a count names unknown player \(key)") }
            map.set(try input.i32(), for: key)
        }
        return map
    }
}
