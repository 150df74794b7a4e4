public import IPAddress
import LocationDB

/// A scoring window: addresses count when their current claim falls inside it.
public enum Period: String, CaseIterable, Sendable, Codable {
    case all, year, month, week, day, hour

    /// Window length in seconds; nil for all time.
    public var seconds: Int64? {
        switch self {
        case .all: return nil
        case .year: return 365 * 86_400
        case .month: return 30 * 86_400
        case .week: return 7 * 86_400
        case .day: return 86_400
        case .hour: return 3_600
        }
    }

    package var index: Int {
        switch self {
        case .all: return 0
        case .year: return 1
        case .month: return 2
        case .week: return 3
        case .day: return 4
        case .hour: return 5
        }
    }

    /// Where the window ending at `now` starts. The year counts by UTC day (it starts at the
    /// beginning of the day 365 days ago), so it needs no entry per claim in the time-ordered
    /// log; the shorter windows are exact to the second.
    public func start(endingAt now: Int64) -> Int64? {
        guard let seconds else { return nil }
        if self == .year { return Scoreboard.day(of: now - seconds) * 86_400 }
        return now - seconds
    }
}

/// One stored claim: the current owner of an address.
public struct Claim: Equatable, Sendable {
    public var address: IPv4Address
    public var name: PlayerName
    /// Unix seconds.
    public var claimedAt: Int64
    /// Country, AS and data-center provider of the address when it was claimed.
    public var origin: ClaimOrigin

    public init(address: IPv4Address, name: PlayerName, claimedAt: Int64, origin: ClaimOrigin = .unknown) {
        self.address = address
        self.name = name
        self.claimedAt = claimedAt
        self.origin = origin
    }
}

/// The game's state and its scores, kept incrementally.
///
/// Every address maps to its current owner. For each period the board keeps counts per
/// (block, player) and per player, updated on every claim in O(1). Timed periods expire
/// claims through a time-ordered log walked by one cursor per period, so moving time forward
/// costs O(claims that left the window), never a scan of the table.
///
/// Each period's counts exist over all addresses and over data-center addresses only (inside
/// some cloud provider's ranges); the "residential only" views are the difference, so a claim
/// from outside every data center (nearly all of them) costs one count per period. All-time
/// counts are also kept per country, per autonomous system, and per player by country and by
/// data-center use.
///
/// A value: `GameEngine` keeps it in a mutex and mutates it in place there. Being a struct
/// (not a class) lets the compiler check exclusive access statically instead of at run
/// time on every count, which was 2 µs of a claim's CPU.
public struct Scoreboard: Sendable {
    /// Minimum age before a re-claim by the current owner refreshes its timestamp.
    public static let refreshInterval: Int64 = 3_600

    /// Where an address was when claimed, packed; interned once per distinct value.
    struct PackedOrigin: Hashable, Sendable {
        var asn: UInt32
        /// `CountryCode.rawValue` (two ASCII letters packed); 0 = unknown.
        var country: UInt16
        /// Index + 1 into `providers`; 0 = not a data-center address.
        var provider: UInt16
        static let unknown = PackedOrigin(asn: 0, country: 0, provider: 0)
    }

    /// The owner of one address, unpacked from its page slot.
    struct Owner {
        var name: UInt32
        var claimedAt: Int64
        var asn: UInt32
        var country: UInt16
        var provider: UInt16
    }

    /// An address whose claim entered the time-ordered log at `time`. The entry is the current
    /// claim of the address as long as the address's slot still carries that time; a re-claim
    /// in the same second keeps the one entry.
    struct LogEntry: Equatable, Sendable {
        var ip: UInt32
        var time: UInt32
    }

    package var names: [PlayerName] = []
    var nameIDs = NameIndex()
    var addresses = AddressPages()
    /// Interned origins; id 0 is the unknown origin.
    var origins: [PackedOrigin] = [.unknown]
    var originIDs: [PackedOrigin: UInt32] = [.unknown: 0]

    /// A slot is a period over all addresses (0..<5) or over data-center addresses only (5..<10).
    static let slots = 2 * Period.allCases.count
    private static func dataCenterSlot(_ period: Int) -> Int { period + Period.allCases.count }

    /// Addresses per player in each (slot, block), at `slot * 256 + block`: one flat array,
    /// so a count is one hash lookup with no nested copy-on-write checks.
    var counts = [CountMap](repeating: CountMap(), count: 2 * Period.allCases.count * 256)
    /// Addresses per player and slot (names are interned 0, 1, 2, …): dense where most
    /// players have some, maps elsewhere.
    var totals = PlayerTotals(slots: slots)
    /// Players with a non-zero total, per slot.
    var playersInSlot = [Int](repeating: 0, count: 2 * Period.allCases.count)
    /// Addresses counted in each slot (the log's live size in the month slot).
    var addressesInSlot = [Int](repeating: 0, count: 2 * Period.allCases.count)

    private static func countIndex(_ slot: Int, _ block: Int) -> Int { slot &* 256 &+ block }
    private func blockCounts(_ slot: Int, _ block: Int) -> CountMap { counts[Self.countIndex(slot, block)] }
    private func total(_ slot: Int, _ name: UInt32) -> Int32 { totals[slot, name] }

    /// All-time addresses per country / AS / player, by name.
    var byCountry = AreaCounts<UInt16>()
    var byAS = AreaCounts<UInt32>()
    var dataCenterOfPlayer = CountMap()
    var providers: [String] = []
    var providerIDs: [String: UInt16] = [:]

    /// Claims in time order, with one cursor per period: entries at or after
    /// `cursor[p]` have `claimedAt >= cutoff[p]`.
    var log: [LogEntry] = []
    var cursor: [Int] = Array(repeating: 0, count: Period.allCases.count)
    var cutoff: [Int64] = Array(repeating: Int64.min, count: Period.allCases.count)
    var latestTime: Int64 = Int64.min

    /// The last 31 UTC days: per day, per player, the net change of the addresses held (all
    /// time). A player's holdings on an earlier day are its holdings now minus the changes
    /// since: what the player page draws.
    var heldChanges: [Int32: CountMap] = [:]
    static let historyDays: Int32 = 31

    static func day(of time: Int64) -> Int64 { time >= 0 ? time / 86_400 : (time - 86_399) / 86_400 }

    /// The most recent effective claims, newest last (bounded).
    var recentRing: [LogEntry] = []
    /// Most log entries allowed beyond twice the live ones before the log is compacted: a
    /// re-claim war (the same addresses claimed over and over) must not grow memory with
    /// the number of claims, only with the number of addresses.
    static let logSlack = 65_536
    static let recentCapacity = 512

    public init() {}

    /// Bumped whenever any count changes (a claim, or a claim leaving a window), so readers
    /// can tell cheaply whether their encoded views are still current.
    public package(set) var version: UInt64 = 0
    /// Bumped when a count of that period changes (indexed by `Period.index`): a claim moves
    /// every period, a claim leaving a window only that window's. The refresher re-encodes
    /// only the periods whose version moved.
    public package(set) var periodVersions = [UInt64](repeating: 0, count: Period.allCases.count)
    /// Bumped when a count of (slot, block) changes (indexed like `counts`): a block's standing
    /// is recomputed only when one of its counts moved (`BoardViews`). Not checkpointed.
    package private(set) var blockVersions = [UInt64](repeating: 0, count: 2 * Period.allCases.count * 256)
    /// Players whose counts moved since the refresher last took them (`takeChanges`), per
    /// period, with their totals as they were then: a refresh updates the views of those
    /// players instead of recomputing every player's. Not checkpointed (a started board has
    /// no views yet, so its first refresh is a full one).
    package private(set) var changes = Changes()
    /// The storage position this board reflects: every claim committed up to it is applied,
    /// none after (set by the engine as it applies committed batches; 0 when unknown).
    public package(set) var storagePosition: Int64 = 0
    /// The position of the checkpoint this board was resumed from (not written to checkpoints).
    package var checkpointPosition: Int64 = 0

    /// Moves whenever a claim lands in `block` (its all-time counts change): what depends only
    /// on the block's owners can be kept until it moves.
    package func ownersVersion(block: Int) -> UInt64 { blockVersions[Self.countIndex(0, block)] }

    public var addressCount: Int { addresses.count }
    /// Entries in the time-ordered log (live or superseded), for memory checks.
    public var logCount: Int { log.count }
    public var playerCount: Int { playersInSlot[0] }

    // MARK: Updates

    public enum Outcome: Equatable, Sendable {
        /// The address changed hands or its timestamp was refreshed.
        case claimed(previousOwner: PlayerName?)
        /// The owner re-claimed within the refresh interval: nothing to store.
        case unchanged
    }

    /// What a claim would do, without doing it.
    public func evaluate(address: IPv4Address, name: PlayerName, at time: Int64) -> Outcome {
        if let existing = addresses.get(address.value) {
            let ownerName = names[Int(existing.name)]
            if ownerName == name, time - Int64(existing.time) < Scoreboard.refreshInterval { return .unchanged }
            return .claimed(previousOwner: ownerName)
        }
        return .claimed(previousOwner: nil)
    }

    /// Applies a claim. With `enforceRefreshInterval` (live claims) a re-claim by the owner
    /// within an hour changes nothing; replayed storage rows are applied as they are.
    @discardableResult
    public mutating func apply(address: IPv4Address, name: PlayerName, at requestedTime: Int64, origin: ClaimOrigin = .unknown, enforceRefreshInterval: Bool = true) -> Outcome {
        let ip = address.value
        let nameID = intern(name)
        // Keep the log ordered even if the wall clock steps back a little; times are stored
        // as 32-bit Unix seconds.
        let time = Self.clampTime(max(requestedTime, latestTime))
        var previous: PlayerName?
        let existing = addresses.get(ip)
        if let existing {
            previous = names[Int(existing.name)]
            if enforceRefreshInterval, existing.name == nameID, time - Int64(existing.time) < Scoreboard.refreshInterval {
                return .unchanged
            }
            adjust(ip: ip, owner(existing), by: -1, at: time)
        }
        let packed = PackedOrigin(asn: origin.asn ?? 0, country: origin.country.flatMap { CountryCode($0)?.rawValue } ?? 0,
                                  provider: internProvider(origin.provider))
        let slot = AddressPages.Slot(name: nameID, time: UInt32(time), origin: internOrigin(packed), octet: UInt8(truncatingIfNeeded: ip))
        addresses.set(ip, slot)
        adjust(ip: ip, owner(slot), by: 1, at: time)
        let entry = LogEntry(ip: ip, time: UInt32(time))
        // The same address claimed again within its second already has this entry.
        if time >= cutoff[Period.month.index], existing?.time != UInt32(time) { log.append(entry) }
        latestTime = max(latestTime, time)
        recentRing.append(entry)
        if recentRing.count > 2 * Scoreboard.recentCapacity {
            recentRing.removeFirst(recentRing.count - Scoreboard.recentCapacity)
        }
        compactLogIfMostlyStale()
        return .claimed(previousOwner: previous)
    }

    static func clampTime(_ t: Int64) -> Int64 { min(max(t, 0), Int64(UInt32.max)) }

    private func owner(_ slot: AddressPages.Slot) -> Owner {
        let o = origins[Int(slot.origin)]
        return Owner(name: slot.name, claimedAt: Int64(slot.time), asn: o.asn, country: o.country, provider: o.provider)
    }

    private mutating func internOrigin(_ origin: PackedOrigin) -> UInt32 {
        if let id = originIDs[origin] { return id }
        // Distinct (country, AS, provider) triples number in the hundreds of thousands; past
        // the 24 bits a slot holds, new ones are recorded as unknown.
        guard origins.count <= Int(AddressPages.maxOrigin) else { return 0 }
        let id = UInt32(origins.count)
        origins.append(origin)
        originIDs[origin] = id
        return id
    }

    /// Whether `entry` still stands for its address's current claim.
    private func isLive(_ entry: LogEntry) -> Bool { addresses.get(entry.ip)?.time == entry.time }

    /// Drops superseded entries once they outnumber the live ones in the month window by far.
    private mutating func compactLogIfMostlyStale() {
        let month = Period.month.index
        let pending = log.count - cursor[month]
        guard pending > 2 * addressesInSlot[month] + Self.logSlack else { return }
        var kept: [LogEntry] = []
        kept.reserveCapacity(addressesInSlot[month] + Self.logSlack / 2)
        for i in cursor[month]..<log.count where isLive(log[i]) { kept.append(log[i]) }
        log = kept
        repositionCursors()
    }

    /// Each timed period's cursor on its first entry inside the window (the log is in time order).
    private mutating func repositionCursors() {
        for period in Period.allCases where period.seconds != nil && period != .year {
            let p = period.index
            var low = 0
            var high = log.count
            while low < high {
                let mid = (low + high) >> 1
                if Int64(log[mid].time) < cutoff[p] { low = mid + 1 } else { high = mid }
            }
            cursor[p] = low
        }
    }

    /// Counts `owner`'s claim of `ip` in (`delta` 1) or out (-1) of every view; `time` is when
    /// that happens (the new claim's time), for the holdings history.
    private mutating func adjust(ip: UInt32, _ owner: Owner, by delta: Int32, at time: Int64) {
        version &+= 1
        let block = Int(ip >> 24)
        let name = owner.name
        for p in 0..<Period.allCases.count where owner.claimedAt >= cutoff[p] {
            periodVersions[p] &+= 1
            count(slot: p, block: block, name: name, by: delta)
            if owner.provider != 0 { count(slot: Self.dataCenterSlot(p), block: block, name: name, by: delta) }
        }
        if time >= cutoff[Period.month.index] {
            let day = Int32(Self.day(of: time))
            heldChanges[day, default: CountMap()].add(delta, to: name)
            if heldChanges[day]?.isEmpty == true { heldChanges[day] = nil }
        }
        // Every address, of a known area or not: a player's sole area must stand for all of them.
        let held = total(0, name)
        byCountry.add(delta, area: owner.country, player: name, total: held)
        byAS.add(delta, area: owner.asn, player: name, total: held)
        if owner.provider != 0 {
            dataCenterOfPlayer.add(delta, to: name)
        }
    }

    private mutating func count(slot: Int, block: Int, name: UInt32, by delta: Int32) {
        Self.add(&counts[Self.countIndex(slot, block)], name, delta)
        blockVersions[Self.countIndex(slot, block)] &+= 1
        addressesInSlot[slot] += Int(delta)
        let period = slot < Period.allCases.count ? slot : slot - Period.allCases.count
        if !changes.isMarked(name, period: period) {
            // Before either of the period's totals moves: both are as the refresher last saw them.
            changes.mark(name, period: period, all: total(period, name), dataCenter: total(Self.dataCenterSlot(period), name),
                         limit: max(Changes.minimumLimit, names.count / 8))
        }
        let (before, after) = totals.add(delta, slot: slot, name: name)
        if before == 0 { playersInSlot[slot] += 1 } else if after == 0 { playersInSlot[slot] -= 1 }
    }

    /// Adds `delta` in place; a count that reaches zero (or less) leaves the map.
    private static func add(_ map: inout CountMap, _ key: UInt32, _ delta: Int32) {
        if map.add(delta, to: key) < 0 { map.removeValue(forKey: key) }
    }

    private mutating func internProvider(_ provider: String?) -> UInt16 {
        guard let provider else { return 0 }
        if let id = providerIDs[provider] { return id }
        guard providers.count < Int(UInt16.max) - 1 else { return 0 }
        providers.append(provider)
        let id = UInt16(providers.count)
        providerIDs[provider] = id
        return id
    }

    private func origin(of owner: Owner) -> ClaimOrigin {
        ClaimOrigin(
            country: owner.country == 0 ? nil : CountryCode(rawValue: owner.country).description,
            asn: owner.asn == 0 ? nil : owner.asn,
            provider: owner.provider == 0 ? nil : providers[Int(owner.provider) - 1]
        )
    }

    private mutating func intern(_ name: PlayerName) -> UInt32 {
        if let id = nameIDs.find(name.value, in: names) { return id }
        let id = UInt32(names.count)
        names.append(name)
        nameIDs.insert(id, names: names)
        totals.appendPlayer()
        byCountry.appendPlayer()
        byAS.appendPlayer()
        return id
    }

    /// Moves the timed windows to end at `now`: claims that fell out stop counting.
    public mutating func advance(to now: Int64) {
        advanceYear(to: now)
        for period in Period.allCases where period != .year {
            guard let newCutoff = period.start(endingAt: now) else { continue }
            let p = period.index
            guard newCutoff > cutoff[p] else { continue }
            var i = cursor[p]
            while i < log.count, Int64(log[i].time) < newCutoff {
                let e = log[i]
                if let slot = addresses.get(e.ip), slot.time == e.time { leave(p, slot, block: Int(e.ip >> 24)) }
                i += 1
            }
            cursor[p] = i
            cutoff[p] = newCutoff
        }
        let oldestDay = Int32(truncatingIfNeeded: Self.day(of: now)) - Self.historyDays
        if heldChanges.keys.contains(where: { $0 < oldestDay }) {
            heldChanges = heldChanges.filter { $0.key >= oldestDay }
        }
        // Drop log entries older than the longest logged window once they are a large share.
        let oldest = cursor[Period.month.index]
        if oldest > 4_096, oldest * 2 > log.count {
            log.removeFirst(oldest)
            for p in cursor.indices { cursor[p] = max(0, cursor[p] - oldest) }
        }
    }

    /// Moves the year window by whole days: the claims of each day that left it are found in
    /// the address pages (a slot carries its claim's time), one pass when the UTC day changes.
    /// So the year needs no entry per claim in the log, nor per (day, block, player) beside it:
    /// day buckets of those cost about 20 bytes a player at a million players (issue 24).
    private mutating func advanceYear(to now: Int64) {
        let p = Period.year.index
        guard let newCutoff = Period.year.start(endingAt: now), newCutoff > cutoff[p] else { return }
        // A slot counts in the year exactly when its time is at or after the cutoff.
        let oldCutoff = cutoff[p]
        let (from, to) = (max(oldCutoff, 0), min(newCutoff, Int64(UInt32.max) + 1))
        if from < to {
            let leaving = from..<to
            for (key, page) in addresses.pages {
                let block = Int(key >> 16)
                for slot in page where leaving.contains(Int64(slot.time)) { leave(p, slot, block: block) }
            }
        }
        cutoff[p] = newCutoff
    }

    /// The claim in `slot` (of `block`) leaves timed period `p`: it stops counting there, over
    /// all addresses and, for a data-center address, over those too.
    private mutating func leave(_ p: Int, _ slot: AddressPages.Slot, block: Int) {
        version &+= 1
        periodVersions[p] &+= 1
        count(slot: p, block: block, name: slot.name, by: -1)
        if origins[Int(slot.origin)].provider != 0 { count(slot: Self.dataCenterSlot(p), block: block, name: slot.name, by: -1) }
    }

    /// Rebuilds the board from stored claims (any order) as of `now`.
    public mutating func load(_ claims: [Claim], now: Int64) {
        var loading = Loading(now: now)
        loading.add(claims.sorted(by: { $0.claimedAt < $1.claimedAt }))
        self = loading.finish()
    }

    /// A board built from stored claims that arrive in time order, a chunk at a time (so a
    /// storage can stream its rows instead of holding them all). `finish` gives the board.
    public struct Loading: Sendable {
        var board = Scoreboard()

        public init(now: Int64) {
            // Set the windows first so each claim counts only where it belongs.
            for period in Period.allCases {
                if let start = period.start(endingAt: now) { board.cutoff[period.index] = start }
            }
        }

        /// Claims later than (or as late as) every claim added before.
        public mutating func add(_ claims: some Sequence<Claim>) {
            for claim in claims {
                board.apply(address: claim.address, name: claim.name, at: claim.claimedAt, origin: claim.origin, enforceRefreshInterval: false)
            }
        }

        public mutating func finish() -> Scoreboard {
            // Position each cursor on the first entry inside its window (entries before it
            // were never counted there).
            board.repositionCursors()
            return board
        }
    }

    /// The players whose counts moved, per period, since the last call; the board then
    /// starts a new list.
    package mutating func takeChanges() -> Changes {
        var taken = Changes(tracking: true)
        swap(&taken, &changes)
        // The marks are cleared one by one, or all at once when a list was given up.
        if taken.overflowed.contains(true) {
            changes.marks = []
        } else {
            changes.marks = taken.marks
            for list in taken.players {
                for c in list { changes.marks[Int(c.id)] = 0 }
            }
        }
        taken.marks = []
        return taken
    }

    /// Players whose counts moved in each period, each listed once with the period's totals
    /// (all addresses, and data-center ones) before the first move. A list given up
    /// (`overflowed`: more players moved than a refresh should update one by one) means
    /// "recompute everything" for that period.
    package struct Changes: Sendable {
        package struct Moved: Sendable, Equatable {
            package var id: UInt32
            package var all: Int32
            package var dataCenter: Int32
        }
        package var players: [[Moved]] = Array(repeating: [], count: Period.allCases.count)
        package var overflowed: [Bool]
        /// Bit p of `marks[id]`: player id is in period p's list (or the list was given up).
        fileprivate var marks: [UInt8] = []
        /// Lists may hold at least this many players, or an eighth of the players.
        static let minimumLimit = 1_024

        /// A board's first list is given up: whoever takes it has seen none of its counts yet
        /// (a board built, loaded or resumed), so everything moved for it.
        package init(tracking: Bool = false) {
            overflowed = [Bool](repeating: !tracking, count: Period.allCases.count)
        }

        /// A list for `period` that is complete (not given up).
        package func moved(_ period: Period) -> [Moved]? { overflowed[period.index] ? nil : players[period.index] }

        fileprivate func isMarked(_ id: UInt32, period: Int) -> Bool {
            Int(id) < marks.count && marks[Int(id)] & (1 << period) != 0
        }

        fileprivate mutating func mark(_ id: UInt32, period: Int, all: Int32, dataCenter: Int32, limit: Int) {
            if Int(id) >= marks.count { marks.append(contentsOf: repeatElement(0, count: Int(id) + 1 - marks.count + marks.count / 2)) }
            marks[Int(id)] |= 1 << period
            guard !overflowed[period] else { return }
            if players[period].count >= limit {
                overflowed[period] = true
                players[period] = []
                return
            }
            players[period].append(Moved(id: id, all: all, dataCenter: dataCenter))
        }
    }

    /// A copy holding only the counts per period, block and player (and the names): what the
    /// snapshot views read. The per-address state (pages, log) and the area counts are left
    /// out, so while the copy lives the writer's next claims copy nothing large on write.
    package func countsOnly() -> Scoreboard {
        var copy = self
        copy.addresses = AddressPages()
        copy.log = []
        copy.recentRing = []
        copy.nameIDs = NameIndex()
        copy.originIDs = [:]
        copy.byCountry = AreaCounts()
        copy.byAS = AreaCounts()
        copy.dataCenterOfPlayer = CountMap()
        copy.heldChanges = [:]
        copy.changes = Changes()
        return copy
    }

    // MARK: Queries

    public func owner(of address: IPv4Address) -> Claim? {
        guard let slot = addresses.get(address.value) else { return nil }
        let o = owner(slot)
        return Claim(address: address, name: names[Int(o.name)], claimedAt: o.claimedAt, origin: origin(of: o))
    }

    /// The newest effective claims still current, newest first.
    public func recent(limit: Int = 50) -> [Claim] {
        var out: [Claim] = []
        var seen: Set<UInt32> = []
        for e in recentRing.reversed() where out.count < limit {
            guard let slot = addresses.get(e.ip), slot.time == e.time, seen.insert(e.ip).inserted else { continue }
            let o = owner(slot)
            out.append(Claim(address: IPv4Address(e.ip), name: names[Int(o.name)], claimedAt: o.claimedAt, origin: origin(of: o)))
        }
        return out
    }

    /// Addresses `name` held at the end of each of the last `days` UTC days up to `now`'s,
    /// oldest first (from its holdings now and the daily changes kept for 31 days).
    public func holdings(of name: PlayerName, days: Int = 30, now: Int64) -> [(day: Int64, addresses: Int)] {
        let days = min(max(days, 1), Int(Self.historyDays) - 1)
        guard let id = nameIDs.find(name.value, in: names) else { return [] }
        let today = Self.day(of: now)
        var held = Int(total(0, id))
        var out: [(day: Int64, addresses: Int)] = []
        for day in stride(from: today, to: today - Int64(days), by: -1) {
            out.append((day, max(0, held)))
            held -= Int(heldChanges[Int32(truncatingIfNeeded: day)]?[id] ?? 0)
        }
        return out.reversed()
    }

    /// Each player id's position in name order: computed once per refresh (and extended, not
    /// redone, as names are interned), so the views sort by integers, not names. Only the
    /// positions are kept (4 bytes a player); the ids in order are made from them where a
    /// whole view is built.
    package struct NameOrder: Sendable {
        package var rank: [UInt32] = []
        /// The ids in name order, made once for a refresh that builds whole views
        /// (`withIDs`); not kept between refreshes.
        private var orderedIDs: [UInt32]?
        package init(rank: [UInt32] = []) { self.rank = rank }

        /// Players ordered.
        package var count: Int { rank.count }

        /// The player ids in name order (a pass over the positions, unless made already).
        package func ids() -> [UInt32] {
            if let orderedIDs { return orderedIDs }
            var ids = [UInt32](repeating: 0, count: rank.count)
            for (id, position) in rank.enumerated() { ids[Int(position)] = UInt32(id) }
            return ids
        }

        /// This order with its ids made, for the several whole views of one refresh.
        package func withIDs() -> NameOrder {
            var order = self
            order.orderedIDs = ids()
            return order
        }
    }

    /// `previous` (the order of the first `previous.ids.count` names) extended with the names
    /// interned since: the new ones sorted and merged in, O(players) rather than a full sort.
    package func nameOrder(extending previous: NameOrder) -> NameOrder {
        guard previous.count < names.count else { return previous }
        let names = self.names
        let old = previous.ids()
        let fresh = (previous.count..<names.count).map(UInt32.init).sorted { names[Int($0)] < names[Int($1)] }
        var rank = [UInt32](repeating: 0, count: names.count)
        var position: UInt32 = 0
        func place(_ id: UInt32) {
            rank[Int(id)] = position
            position += 1
        }
        var i = 0
        var j = 0
        while i < old.count, j < fresh.count {
            if names[Int(fresh[j])] < names[Int(old[i])] {
                place(fresh[j])
                j += 1
            } else {
                place(old[i])
                i += 1
            }
        }
        for id in old[i...] { place(id) }
        for id in fresh[j...] { place(id) }
        return NameOrder(rank: rank)
    }

    /// `scores(_:)` through a precomputed name order (the views are built from `scoreTable`).
    package func scores(_ period: Period, order: NameOrder) -> [(name: PlayerName, blocks: [(block: Int, count: Int)])] {
        let table = scoreTable(period, order: order)
        return table.players.indices.map { i in
            (names[Int(table.players[i])], table.blocks(of: i).map { (block: Int(table.block[$0]), count: Int(table.count[$0])) })
        }
    }

    /// Every player's addresses per block in a period, flat: players in name order, and for
    /// each its (block, count) pairs in block order. Two arrays of pairs and one of offsets,
    /// instead of an array per player (at a million players the small arrays were most of a
    /// refresh's time and memory).
    package struct ScoreTable: Sendable {
        /// Player ids with any address in the period, in name order.
        package var players: [UInt32] = []
        /// `start[i]..<start[i + 1]` are player i's pairs.
        package var start: [Int32] = [0]
        package var block: [UInt8] = []
        package var count: [Int32] = []
        package func blocks(of i: Int) -> Range<Int> { Int(start[i])..<Int(start[i + 1]) }
        package init() {}
    }

    package func scoreTable(_ period: Period, order: NameOrder) -> ScoreTable {
        // Pairs per player id, then each id's first pair: a counting sort by player.
        var pairs = [Int32](repeating: 0, count: names.count + 1)
        var total = 0
        for block in 0..<256 {
            let counts = blockCounts(period.index, block)
            total += counts.count
            for name in counts.keys { pairs[Int(name)] += 1 }
        }
        var table = ScoreTable()
        table.block = [UInt8](repeating: 0, count: total)
        table.count = [Int32](repeating: 0, count: total)
        // Where each id's pairs go, in name order.
        var at = [Int32](repeating: -1, count: names.count)
        var next: Int32 = 0
        table.players.reserveCapacity(playersInSlot[period.index])
        table.start.reserveCapacity(playersInSlot[period.index] + 1)
        for id in order.ids() where pairs[Int(id)] > 0 {
            at[Int(id)] = next
            next += pairs[Int(id)]
            table.players.append(id)
            table.start.append(next)
        }
        for block in 0..<256 {
            for (name, n) in blockCounts(period.index, block) {
                let i = Int(at[Int(name)])
                table.block[i] = UInt8(block)
                table.count[i] = n
                at[Int(name)] += 1
            }
        }
        return table
    }

    /// One player's addresses per block in a period, in block order (a lookup in each block:
    /// for the few players a refresh updates, not for every player).
    package func blockCounts(of id: UInt32, period: Period) -> [(block: UInt8, count: Int32)] {
        var out: [(block: UInt8, count: Int32)] = []
        for block in 0..<256 {
            if let n = counts[Self.countIndex(period.index, block)][id] { out.append((UInt8(block), n)) }
        }
        return out
    }

    public func scores(_ period: Period) -> [(name: PlayerName, blocks: [(block: Int, count: Int)])] {
        var perName: [UInt32: [(Int, Int)]] = [:]
        for block in 0..<256 {
            for (name, count) in blockCounts(period.index, block) {
                perName[name, default: []].append((block, Int(count)))
            }
        }
        return perName
            .map { (names[Int($0.key)], $0.value.map { (block: $0.0, count: $0.1) }) }
            .sorted { $0.0 < $1.0 }
    }

    public struct BlockStanding: Equatable, Sendable {
        public var block: Int
        /// nil when nobody has claimed in the block or when the top is tied.
        public var holder: PlayerName?
        public var isTied: Bool
        /// Addresses of the top player (the tied count when tied).
        public var count: Int
        public var runnerUp: PlayerName?
        public var runnerUpCount: Int
        /// All addresses claimed in the block.
        public var total: Int
        public var players: Int
        /// The holder's interned id (views built from a counts-only copy have no name index).
        /// Not part of equality: ids depend on the order names were first seen.
        var holderID: UInt32?

        public static func == (a: BlockStanding, b: BlockStanding) -> Bool {
            (a.block, a.holder, a.isTied, a.count) == (b.block, b.holder, b.isTied, b.count)
                && (a.runnerUp, a.runnerUpCount, a.total, a.players) == (b.runnerUp, b.runnerUpCount, b.total, b.players)
        }
    }

    /// Whether a count of `block` in `period` (or, for the residential view, in its
    /// data-center slot) changed since `versions` (an earlier `blockVersions`).
    package func blockMoved(_ block: Int, period: Period, residential: Bool, since versions: [UInt64]) -> Bool {
        guard versions.count == blockVersions.count else { return true }
        let i = Self.countIndex(period.index, block)
        if blockVersions[i] != versions[i] { return true }
        guard residential else { return false }
        let d = Self.countIndex(Self.dataCenterSlot(period.index), block)
        return blockVersions[d] != versions[d]
    }

    /// Standings of the 256 blocks; `residential` counts only addresses outside data centers.
    public func blocks(_ period: Period, residential: Bool = false) -> [BlockStanding] {
        (0..<256).map { standing(block: $0, period: period, residential: residential) }
    }

    /// The same, breaking ties by `order.rank` (an integer) instead of comparing names.
    package func blocks(_ period: Period, residential: Bool = false, order: NameOrder) -> [BlockStanding] {
        (0..<256).map { standing(block: $0, period: period, residential: residential, order: order) }
    }

    public func standing(block: Int, period: Period, residential: Bool = false) -> BlockStanding {
        standing(block: block, period: period, residential: residential, order: nil)
    }

    package func standing(block: Int, period: Period, residential: Bool, order: NameOrder?) -> BlockStanding {
        let names = self.names
        // Whether player a sorts before player b (ties of counts go to the earlier name).
        let before: (UInt32, UInt32) -> Bool = order.map { o in { o.rank[Int($0)] < o.rank[Int($1)] } }
            ?? { names[Int($0)] < names[Int($1)] }
        let all = blockCounts(period.index, block)
        let dataCenter = residential ? blockCounts(Self.dataCenterSlot(period.index), block) : CountMap()
        var top: (UInt32, Int32)?
        var second: (UInt32, Int32)?
        var total = 0
        var players = 0
        for (name, allCount) in all {
            let count = dataCenter.isEmpty ? allCount : allCount - (dataCenter[name] ?? 0)
            guard count > 0 else { continue }
            players += 1
            total += Int(count)
            if let t = top, !(count > t.1 || (count == t.1 && before(name, t.0))) {
                if let s = second, !(count > s.1 || (count == s.1 && before(name, s.0))) { continue }
                second = (name, count)
            } else {
                second = top
                top = (name, count)
            }
        }
        let tied = top != nil && second != nil && top!.1 == second!.1
        return BlockStanding(
            block: block,
            holder: tied ? nil : top.map { names[Int($0.0)] },
            isTied: tied,
            count: Int(top?.1 ?? 0),
            runnerUp: second.map { names[Int($0.0)] },
            runnerUpCount: Int(second?.1 ?? 0),
            total: total,
            players: players,
            holderID: tied ? nil : top?.0
        )
    }

    public struct LeaderboardEntry: Equatable, Sendable {
        public var rank: Int
        public var name: PlayerName
        public var blocksHeld: [Int]
        public var addresses: Int
    }

    /// Players ranked by blocks held, then addresses, then name. Equal (blocks, addresses)
    /// share a rank.
    public func leaderboard(_ period: Period, residential: Bool = false) -> [LeaderboardEntry] {
        leaderboard(period, residential: residential, standings: blocks(period, residential: residential))
    }

    /// The same, from block standings the caller already computed for this period and view.
    package func leaderboard(_ period: Period, residential: Bool = false, standings: [BlockStanding]) -> [LeaderboardEntry] {
        leaderboard(period, residential: residential, standings: standings, order: nil)
    }

    package func leaderboard(_ period: Period, residential: Bool, standings: [BlockStanding], order: NameOrder?) -> [LeaderboardEntry] {
        guard let order else { return leaderboardByName(period, residential: residential, standings: standings) }
        let ranking = ranking(period, residential: residential, standings: standings, order: order)
        return ranking.entries(0..<ranking.count)
    }

    /// A leaderboard kept compactly (4 bytes a player: its id), whose entries are made a page
    /// at a time. Players rank by blocks held, then addresses, then name; equal (blocks,
    /// addresses) share a rank.
    public struct Ranking: Sendable {
        /// Player ids in rank order.
        var ids: [UInt32] = []
        /// The holders' addresses (they come first), then, for everyone else, runs of equal
        /// address counts: where each starts, most addresses first (a few thousand runs at
        /// most, where an array of counts took 4 bytes a player).
        var holderAddresses: [UInt32] = []
        var runStarts: [Int] = []
        var runAddresses: [UInt32] = []

        func addresses(at i: Int) -> UInt32 {
            if i < holderAddresses.count { return holderAddresses[i] }
            // The last run starting at or before i.
            var low = 0
            var high = runStarts.count
            while low < high {
                let mid = (low + high) >> 1
                if runStarts[mid] <= i { low = mid + 1 } else { high = mid }
            }
            return runAddresses[low - 1]
        }
        /// Blocks held, by player id: at most 256 players hold any, and they rank first.
        var held: [UInt32: [Int]] = [:]
        /// Names by id (the board's array: shared, not copied).
        var names: [PlayerName] = []

        /// Players ranked: `ids.count` for a whole ranking, more for a top (`isWhole` false).
        var total = 0

        public init() {}

        /// The players in the ranking (with an address in the view).
        public var count: Int { total }
        /// Whether every ranked player has its entry here, not only the first ones.
        public var isWhole: Bool { ids.count == total }
        /// Entries held here: pages inside them can be made from this ranking.
        public var entryCount: Int { ids.count }

        /// Sizes of a kept top (`Scoreboard.top`): refilled from the whole ranking when fewer
        /// than `minimumTop` entries are left (and the ranking has more).
        package static let topSize = 4_096
        package static let minimumTop = 1_024

        /// The entries of the players who hold a block (they rank first).
        public var holders: [LeaderboardEntry] { entries(0..<held.count) .filter { !$0.blocksHeld.isEmpty } }

        private func key(_ i: Int) -> (Int, UInt32) { (held[ids[i]]?.count ?? 0, addresses(at: i)) }

        /// The entries at `range` (clamped to the ranking).
        public func entries(_ range: Range<Int>) -> [LeaderboardEntry] {
            let range = range.clamped(to: 0..<ids.count)
            guard let first = range.first else { return [] }
            // Keys never rise along the ranking: the first index with the first entry's key
            // gives its rank, found by bisection.
            let k = key(first)
            var low = 0
            var high = first
            while low < high {
                let mid = (low + high) >> 1
                if key(mid) == k { high = mid } else { low = mid + 1 }
            }
            var rank = low + 1
            var out: [LeaderboardEntry] = []
            out.reserveCapacity(range.count)
            for i in range {
                if i > first, key(i) != key(i - 1) { rank = i + 1 }
                out.append(LeaderboardEntry(rank: rank, name: names[Int(ids[i])], blocksHeld: held[ids[i]] ?? [], addresses: Int(addresses(at: i))))
            }
            return out
        }
    }

    /// The ranking of `period`, from the block standings of that period and view. Linear in
    /// the players: the few who hold blocks are sorted; everyone else is placed by address
    /// count (a counting sort over the names in order), so ties keep the name order.
    package func ranking(_ period: Period, residential: Bool, standings: [BlockStanding], order: NameOrder) -> Ranking {
        var ranking = Ranking()
        ranking.names = names
        for s in standings {
            if let id = s.holderID { ranking.held[id, default: []].append(s.block) }
        }
        let p = period.index
        let dataCenter = Self.dataCenterSlot(p)
        // Every player's addresses in the view, placed at its name's rank: the totals are
        // read in id order (reading them in name order cost a cache miss each), the holders
        // marked off.
        let players = order.count
        var amountByRank = [Int32](repeating: 0, count: players)
        order.rank.withUnsafeBufferPointer { rank in
            amountByRank.withUnsafeMutableBufferPointer { amount in
                totals.place(slot: p, minus: residential ? dataCenter : nil, position: UnsafeBufferPointer(rebasing: rank[..<min(players, rank.count)]), into: amount)
            }
        }
        var holders: [(id: UInt32, blocks: Int, addresses: Int32)] = []
        for (id, blocks) in ranking.held {
            let r = Int(order.rank[Int(id)])
            if amountByRank[r] > 0 { holders.append((id, blocks.count, amountByRank[r])) }
            amountByRank[r] = 0 // placed with the holders
        }
        holders.sort {
            ($0.blocks, $0.addresses) != ($1.blocks, $1.addresses) ? ($0.blocks, $0.addresses) > ($1.blocks, $1.addresses)
                : order.rank[Int($0.id)] < order.rank[Int($1.id)]
        }
        // Everyone else: how many players have each address count (small counts in an array,
        // the rest in a dictionary), then where each count starts, most addresses first.
        var small = [Int](repeating: 0, count: 1_024)
        var large: [Int32: Int] = [:]
        var others = 0
        for n in amountByRank where n > 0 {
            others += 1
            if n < 1_024 { small[Int(n)] += 1 } else { large[n, default: 0] += 1 }
        }
        var largeStart: [Int32: Int] = [:]
        var next = holders.count
        for n in large.keys.sorted(by: >) {
            largeStart[n] = next
            ranking.runStarts.append(next)
            ranking.runAddresses.append(UInt32(n))
            next += large[n]!
        }
        var smallStart = [Int](repeating: 0, count: 1_024)
        for n in stride(from: 1_023, through: 1, by: -1) {
            smallStart[n] = next
            if small[n] > 0 {
                ranking.runStarts.append(next)
                ranking.runAddresses.append(UInt32(n))
            }
            next += small[n]
        }
        var ids = [UInt32](repeating: 0, count: holders.count + others)
        let orderedIDs = order.ids()
        for (i, h) in holders.enumerated() {
            ids[i] = h.id
            ranking.holderAddresses.append(UInt32(h.addresses))
        }
        for (r, n) in amountByRank.enumerated() where n > 0 {
            let i: Int
            if n < 1_024 {
                i = smallStart[Int(n)]
                smallStart[Int(n)] += 1
            } else {
                i = largeStart[n]!
                largeStart[n]! += 1
            }
            ids[i] = orderedIDs[r]
        }
        ranking.ids = ids
        ranking.total = ids.count
        return ranking
    }

    /// A player's addresses in a view, from the counts.
    private func amount(_ id: UInt32, _ period: Period, residential: Bool) -> Int32 {
        total(period.index, id) &- (residential ? total(Self.dataCenterSlot(period.index), id) : 0)
    }

    /// The first `Ranking.topSize` entries of the ranking (every entry when there are fewer),
    /// and the number of players ranked: what a refresh keeps and publishes.
    package func top(_ period: Period, residential: Bool, standings: [BlockStanding], order: NameOrder) -> Ranking {
        let whole = ranking(period, residential: residential, standings: standings, order: order)
        guard whole.ids.count > Ranking.topSize else { return whole }
        var entries: [(id: UInt32, blocks: Int, addresses: Int32)] = []
        entries.reserveCapacity(Ranking.topSize)
        for i in 0..<Ranking.topSize {
            entries.append((whole.ids[i], whole.held[whole.ids[i]]?.count ?? 0, Int32(whole.addresses(at: i))))
        }
        return Self.ranking(entries, held: whole.held, names: names, total: whole.total)
    }

    /// `top` (this view's top at the last refresh) moved on by the players whose counts moved
    /// since (`moved`, from `takeChanges`) and those whose blocks held changed: they leave the
    /// top and come back in at their new place. Every player outside the top ranks after its
    /// last entry, so a player who moved is placed only when it ranks before that entry (or
    /// the top holds everyone). nil when too few entries are left: rebuild it with `top`.
    package func top(updating top: Ranking, period: Period, residential: Bool, standings: [BlockStanding], order: NameOrder,
                     moved: [Changes.Moved]) -> Ranking? {
        var held: [UInt32: [Int]] = [:]
        for s in standings {
            if let id = s.holderID { held[id, default: []].append(s.block) }
        }
        var affected = Set(moved.map(\.id))
        for (id, blocks) in held where top.held[id]?.count != blocks.count { affected.insert(id) }
        for id in top.held.keys where held[id] == nil { affected.insert(id) }
        var total = top.total
        for m in moved {
            let before = m.all &- (residential ? m.dataCenter : 0)
            let after = amount(m.id, period, residential: residential)
            total += (after > 0 ? 1 : 0) - (before > 0 ? 1 : 0)
        }
        typealias Entry = (id: UInt32, blocks: Int, addresses: Int32)
        func precedes(_ a: Entry, _ b: Entry) -> Bool {
            (a.blocks, a.addresses) != (b.blocks, b.addresses) ? (a.blocks, a.addresses) > (b.blocks, b.addresses)
                : order.rank[Int(a.id)] < order.rank[Int(b.id)]
        }
        var entries: [Entry] = []
        entries.reserveCapacity(top.ids.count + affected.count)
        for i in top.ids.indices where !affected.contains(top.ids[i]) {
            let id = top.ids[i]
            entries.append((id, held[id]?.count ?? 0, Int32(top.addresses(at: i))))
        }
        let last = entries.last
        for id in affected {
            let addresses = amount(id, period, residential: residential)
            guard addresses > 0 else { continue }
            let entry = (id: id, blocks: held[id]?.count ?? 0, addresses: addresses)
            if top.isWhole || last.map({ precedes(entry, $0) }) == true { entries.append(entry) }
        }
        entries.sort(by: precedes)
        if entries.count > Ranking.topSize { entries.removeLast(entries.count - Ranking.topSize) }
        guard entries.count >= min(total, Ranking.minimumTop) else { return nil }
        return Self.ranking(entries, held: held, names: names, total: total)
    }

    /// A ranking of `entries`, already in rank order.
    private static func ranking(_ entries: [(id: UInt32, blocks: Int, addresses: Int32)], held: [UInt32: [Int]], names: [PlayerName], total: Int) -> Ranking {
        var ranking = Ranking()
        ranking.names = names
        ranking.held = held
        ranking.total = total
        ranking.ids = entries.map(\.id)
        for (i, e) in entries.enumerated() {
            if e.blocks > 0 {
                ranking.holderAddresses.append(UInt32(e.addresses))
            } else if ranking.runAddresses.last != UInt32(e.addresses) || ranking.runStarts.isEmpty {
                ranking.runStarts.append(i)
                ranking.runAddresses.append(UInt32(e.addresses))
            }
        }
        return ranking
    }

    private func leaderboardByName(_ period: Period, residential: Bool, standings: [BlockStanding]) -> [LeaderboardEntry] {
        var held: [PlayerName: [Int]] = [:]
        for s in standings {
            if let h = s.holder { held[h, default: []].append(s.block) }
        }
        let p = period.index
        var entries: [LeaderboardEntry] = []
        entries.reserveCapacity(playersInSlot[p])
        for id in names.indices {
            let addresses = amount(UInt32(id), period, residential: residential)
            guard addresses > 0 else { continue }
            let name = names[id]
            entries.append(LeaderboardEntry(rank: 0, name: name, blocksHeld: held[name] ?? [], addresses: Int(addresses)))
        }
        entries.sort {
            ($0.blocksHeld.count, $0.addresses) != ($1.blocksHeld.count, $1.addresses)
                ? ($0.blocksHeld.count, $0.addresses) > ($1.blocksHeld.count, $1.addresses)
                : $0.name < $1.name
        }
        for i in entries.indices {
            if i > 0, entries[i].blocksHeld.count == entries[i - 1].blocksHeld.count, entries[i].addresses == entries[i - 1].addresses {
                entries[i].rank = entries[i - 1].rank
            } else {
                entries[i].rank = i + 1
            }
        }
        return entries
    }

    public struct PlayerBlock: Equatable, Sendable {
        public var block: Int
        public var count: Int
        /// 1 + the number of players with more addresses in the block.
        public var rank: Int
        /// Another player has the same count.
        public var isTied: Bool
        public var players: Int
        /// The rank of the block's last player (ranks skip past ties, so not always `players`).
        public var worstRank: Int = 1
    }

    public struct PlayerStanding: Equatable, Sendable {
        public var name: PlayerName
        public var addresses: Int
        public var blocks: [PlayerBlock]
        /// All-time: addresses held per country, most first (only addresses with a known country).
        public var countries: [(country: String, addresses: Int)] = []
        /// All-time: addresses held now, and how many of them are in a data center.
        public var allTimeAddresses = 0
        public var dataCenterAddresses = 0
        public var dataCenterShare: Double { allTimeAddresses == 0 ? 0 : Double(dataCenterAddresses) / Double(allTimeAddresses) }

        public static func == (a: PlayerStanding, b: PlayerStanding) -> Bool {
            a.name == b.name && a.addresses == b.addresses && a.blocks == b.blocks
                && a.countries.map(\.country) == b.countries.map(\.country) && a.countries.map(\.addresses) == b.countries.map(\.addresses)
                && a.allTimeAddresses == b.allTimeAddresses && a.dataCenterAddresses == b.dataCenterAddresses
        }
        public var blocksHeld: [Int] { blocks.filter { $0.rank == 1 && !$0.isTied }.map(\.block) }
    }

    public func player(_ name: PlayerName, period: Period) -> PlayerStanding? {
        guard let id = nameIDs.find(name.value, in: names) else { return nil }
        let p = period.index
        var result: [PlayerBlock] = []
        for block in 0..<256 {
            let here = blockCounts(p, block)
            guard let mine = here[id] else { continue }
            var above = 0
            var same = 0
            var fewest = mine
            for (other, c) in here where other != id {
                if c > mine { above += 1 } else if c == mine { same += 1 }
                fewest = min(fewest, c)
            }
            var aboveFewest = 0
            for c in here.values where c > fewest { aboveFewest += 1 }
            result.append(PlayerBlock(block: block, count: Int(mine), rank: above + 1, isTied: same > 0, players: here.count, worstRank: aboveFewest + 1))
        }
        var countries = byCountry.areas(of: id, total: total(0, id)).map { (country: CountryCode(rawValue: $0.area).description, addresses: Int($0.count)) }
        countries.sort { $0.addresses != $1.addresses ? $0.addresses > $1.addresses : $0.country < $1.country }
        return PlayerStanding(
            name: name, addresses: Int(total(p, id)), blocks: result, countries: countries,
            allTimeAddresses: Int(total(0, id)), dataCenterAddresses: Int(dataCenterOfPlayer[id] ?? 0))
    }

    /// The players of one block with their address counts, most first, then by name (web block page).
    public func blockPlayers(block: Int, period: Period, limit: Int = 10) -> [(name: PlayerName, count: Int)] {
        guard (0..<256).contains(block) else { return [] }
        return blockCounts(period.index, block)
            .map { (name: names[Int($0.key)], count: Int($0.value)) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
            .prefix(limit).map { $0 }
    }

    /// Who leads each /24 of a block among current owners (web block map): `holders[i]` for the
    /// /24 `block.(i >> 8).(i & 255).0` is an index into `names`, -1 when empty, -2 when tied.
    /// One pass over all owners: callers cache the result.
    public func areaHolders(block: Int) -> (names: [PlayerName], holders: [Int32]) {
        var keys: [UInt64] = []
        addresses.forEach(inBlock: block) { ip, slot in
            keys.append(UInt64((ip >> 8) & 0xFFFF) << 32 | UInt64(slot.name))
        }
        keys.sort()
        var holders = [Int32](repeating: -1, count: 65_536)
        var local: [UInt32: Int32] = [:]
        var outNames: [PlayerName] = []
        var i = 0
        while i < keys.count {
            let area = Int(keys[i] >> 32)
            var best: (name: UInt32, count: Int) = (0, 0)
            var tied = false
            while i < keys.count, Int(keys[i] >> 32) == area {
                let name = UInt32(truncatingIfNeeded: keys[i])
                var n = 0
                while i < keys.count, keys[i] == (UInt64(area) << 32 | UInt64(name)) { n += 1; i += 1 }
                if n > best.count { best = (name, n); tied = false } else if n == best.count { tied = true }
            }
            if tied { holders[area] = -2; continue }
            if let id = local[best.name] { holders[area] = id; continue }
            let id = Int32(outNames.count)
            local[best.name] = id
            outNames.append(names[Int(best.name)])
            holders[area] = id
        }
        return (outNames, holders)
    }

    /// Adds the addresses of `block` per `2^shift`-address area into `counts` (indexed by
    /// `ip >> shift`, offset so the block's first area is `counts[0]`), only `name`'s when given.
    /// Returns false for an unknown name. One block per call: callers release the lock between
    /// blocks when they walk the whole space.
    public func addAreaCounts(inBlock block: Int, shift: Int, of name: PlayerName? = nil, into counts: inout [UInt32], offset: Int = 0) -> Bool {
        var id: UInt32?
        if let name {
            guard let known = nameIDs.find(name.value, in: names) else { return false }
            id = known
        }
        let first = (block << 24) >> shift
        addresses.forEach(inBlock: block) { ip, slot in
            if let id, slot.name != id { return }
            counts[offset + Int(ip >> UInt32(shift)) - first] &+= 1
        }
        return true
    }

    // MARK: Countries and autonomous systems (all time)

    public struct RankedPlayer: Equatable, Sendable {
        /// Players with the same count share a rank.
        public var rank: Int
        public var name: PlayerName
        public var addresses: Int
    }

    /// Who holds the most addresses of one country or AS.
    public struct AreaStanding: Equatable, Sendable {
        public var addresses: Int
        public var playerCount: Int
        /// Ranked, most addresses first, then by name; at most the requested number.
        public var players: [RankedPlayer]
        /// The single top player, nil when nobody or a tie.
        public var ruler: PlayerName? {
            guard let first = players.first, first.rank == 1 else { return nil }
            if players.count > 1, players[1].rank == 1 { return nil }
            return first.name
        }
    }

    /// "Who rules DE": players by addresses held in the country (upper-case ISO code).
    public func country(_ code: String, limit: Int = 100) -> AreaStanding? {
        guard let packed = ClaimOrigin.normalizedCountry(code).flatMap({ CountryCode($0)?.rawValue }), let map = byCountry.players(in: packed, total: { total(0, $0) }) else { return nil }
        return standing(of: map, limit: limit)
    }

    /// "Who rules AS3320": players by addresses held in the autonomous system.
    public func autonomousSystem(_ asn: UInt32, limit: Int = 100) -> AreaStanding? {
        guard asn != 0, let map = byAS.players(in: asn, total: { total(0, $0) }) else { return nil }
        return standing(of: map, limit: limit)
    }

    public struct AreaSummary: Equatable, Sendable {
        /// The country code or "AS<number>".
        public var key: String
        /// The AS number, for an autonomous system's summary.
        public var asn: UInt32?
        public var addresses: Int
        public var playerCount: Int
        public var ruler: PlayerName?
        public var rulerAddresses: Int
    }

    /// Every country with claimed addresses, most addresses first.
    public func countries() -> [AreaSummary] {
        summaries(byCountry.all(total: { total(0, $0) }).map { (CountryCode(rawValue: $0.key).description, nil, $0.value) })
    }

    /// The autonomous systems with the most claimed addresses.
    public func autonomousSystems(limit: Int = 100) -> [AreaSummary] {
        Array(summaries(byAS.all(total: { total(0, $0) }).map { ("AS\($0.key)", $0.key, $0.value) }).prefix(limit))
    }

    private func summaries(_ areas: [(key: String, asn: UInt32?, counts: CountMap)]) -> [AreaSummary] {
        areas.map { key, asn, map in
            let top = standing(of: map, limit: 2)
            return AreaSummary(key: key, asn: asn, addresses: top.addresses, playerCount: top.playerCount, ruler: top.ruler,
                               rulerAddresses: top.players.first?.addresses ?? 0)
        }
        .sorted { $0.addresses != $1.addresses ? $0.addresses > $1.addresses : $0.key < $1.key }
    }

    private func standing(of map: CountMap, limit: Int) -> AreaStanding {
        var all = map.map { (name: names[Int($0.key)], count: Int($0.value)) }
        let total = all.reduce(0) { $0 + $1.count }
        all.sort { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
        var ranked: [RankedPlayer] = []
        ranked.reserveCapacity(min(limit, all.count))
        for (i, entry) in all.prefix(limit).enumerated() {
            let rank = i > 0 && entry.count == all[i - 1].count ? ranked[i - 1].rank : i + 1
            ranked.append(RankedPlayer(rank: rank, name: entry.name, addresses: entry.count))
        }
        return AreaStanding(addresses: total, playerCount: all.count, players: ranked)
    }

    public func isKnown(_ name: PlayerName) -> Bool { nameIDs.find(name.value, in: names) != nil }

    /// Every current claim (for export and tests), in address order.
    public func allClaims() -> [Claim] {
        addresses.sortedAddresses().map { ip, slot in
            let o = owner(slot)
            return Claim(address: IPv4Address(ip), name: names[Int(o.name)], claimedAt: o.claimedAt, origin: origin(of: o))
        }
    }
}
