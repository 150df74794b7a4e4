/// The current owner of every claimed address, in pages of one /24 each.
///
/// A general hash map of the board's old `Owner` entries cost 62–119 bytes per address (the
/// entry, its padding, the table's empty buckets). Claimed addresses cluster in /24s, so here
/// each /24 holds one array of 12-byte slots sorted by the last octet: a lookup is one hash of
/// the /24 and a binary search of at most 256 slots, an insert moves at most 3 KB, and a full
/// page costs 12 bytes per address plus one array header. Player names, origins and times are
/// stored as 32-bit numbers (names and origins interned by the board).
struct AddressPages: Sendable {
    /// One claimed address of a page.
    struct Slot: Equatable, Sendable {
        /// Interned player name.
        var name: UInt32
        /// Unix seconds of the claim (through 2106).
        var time: UInt32
        /// Interned origin in the high 24 bits, the address's last octet in the low 8.
        var originAndOctet: UInt32

        init(name: UInt32, time: UInt32, origin: UInt32, octet: UInt8) {
            self.name = name
            self.time = time
            originAndOctet = origin << 8 | UInt32(octet)
        }

        var octet: UInt8 { UInt8(truncatingIfNeeded: originAndOctet) }
        var origin: UInt32 { originAndOctet >> 8 }
    }

    /// Pages by /24 (the address shifted right by 8).
    private(set) var pages: [UInt32: [Slot]] = [:]
    private(set) var count = 0

    init() {}

    /// Restores pages read from a checkpoint (each sorted by octet, no duplicates).
    init(pages: [UInt32: [Slot]], count: Int) {
        self.pages = pages
        self.count = count
    }

    /// The largest origin id a slot can hold.
    static let maxOrigin: UInt32 = (1 << 24) - 1

    private static func position(_ page: [Slot], _ octet: UInt8) -> (index: Int, found: Bool) {
        var low = 0
        var high = page.count
        while low < high {
            let mid = (low + high) >> 1
            let here = page[mid].octet
            if here == octet { return (mid, true) }
            if here < octet { low = mid + 1 } else { high = mid }
        }
        return (low, false)
    }

    func get(_ ip: UInt32) -> Slot? {
        guard let page = pages[ip >> 8] else { return nil }
        let (i, found) = Self.position(page, UInt8(truncatingIfNeeded: ip))
        return found ? page[i] : nil
    }

    /// Sets the owner of `ip`; returns the slot it replaced.
    @discardableResult
    mutating func set(_ ip: UInt32, _ slot: Slot) -> Slot? {
        var replaced: Slot?
        // In place: the dictionary's modify accessor hands out the page without a copy.
        Self.upsert(&pages[ip >> 8, default: []], slot, replaced: &replaced)
        if replaced == nil { count += 1 }
        return replaced
    }

    private static func upsert(_ page: inout [Slot], _ slot: Slot, replaced: inout Slot?) {
        let (i, found) = position(page, slot.octet)
        if found {
            replaced = page[i]
            page[i] = slot
        } else {
            if page.isEmpty { page.reserveCapacity(4) }
            page.insert(slot, at: i)
        }
    }

    /// Every address and its slot, in no particular order of pages.
    func forEach(_ body: (UInt32, Slot) throws -> Void) rethrows {
        for (key, page) in pages {
            for slot in page { try body(key << 8 | UInt32(slot.octet), slot) }
        }
    }

    /// Every address of one /8 block.
    func forEach(inBlock block: Int, _ body: (UInt32, Slot) throws -> Void) rethrows {
        // Pages are keyed by /24; a block has at most 65,536 of them, often far fewer than all pages.
        let first = UInt32(block) << 16
        if pages.count > 65_536 {
            for low in 0..<UInt32(65_536) {
                guard let page = pages[first | low] else { continue }
                for slot in page { try body((first | low) << 8 | UInt32(slot.octet), slot) }
            }
        } else {
            for (key, page) in pages where key >> 16 == UInt32(block) {
                for slot in page { try body(key << 8 | UInt32(slot.octet), slot) }
            }
        }
    }

    /// Every address in ascending order.
    func sortedAddresses() -> [(UInt32, Slot)] {
        var out: [(UInt32, Slot)] = []
        out.reserveCapacity(count)
        for key in pages.keys.sorted() {
            for slot in pages[key]! { out.append((key << 8 | UInt32(slot.octet), slot)) }
        }
        return out
    }
}
