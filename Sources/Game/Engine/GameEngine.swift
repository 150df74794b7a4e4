import Foundation
public import IPAddress
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization
import CSystemInfo
#if canImport(Glibc)
import Glibc
#endif
public import GameRules

/// Wall-clock time as Unix seconds and nanoseconds.
public struct WallClock: Sendable {
    public var now: @Sendable () -> (seconds: Int64, nanoseconds: Int32)

    public init(now: @escaping @Sendable () -> (seconds: Int64, nanoseconds: Int32)) { self.now = now }

    public static let system = WallClock {
        var seconds: Int64 = 0
        var nanoseconds: Int32 = 0
        ipq_realtime(&seconds, &nanoseconds)
        return (seconds, nanoseconds)
    }

    public var seconds: Int64 { now().seconds }
}

/// Why a claim was not taken.
public enum ClaimError: Error, Equatable, Sendable {
    /// The pending-claim queue is full: answer 503 and ask the client to retry.
    case queueFull
    /// Storage failed or is shutting down: the claim was not stored.
    case unavailable(String)
}

/// The game: the in-memory scoreboard, the group-committing claim writer, and the snapshots
/// that reads are served from.
///
/// Claims enter a bounded queue; one writer task takes everything queued (up to
/// `maxBatch`), decides each claim's effect against the board, stores the effective ones in
/// one transaction, and only then applies them to the board and answers the waiting
/// requests. While one batch commits the next one gathers, so the commit cost is shared.
public final class GameEngine: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Claims waiting to be written before new ones get 503.
        public var queueCapacity: Int = 65_536
        /// Most claims in one transaction.
        public var maxBatch: Int = 4_096
        /// Journal rows folded per maintenance step.
        public var maintenanceChunk: Int = 1_000
        /// Snapshot refresh interval while claims arrive.
        public var snapshotInterval: Duration = .milliseconds(200)
        /// How often claims other instances committed are folded into the board (shared storage only).
        public var followInterval: Duration = .milliseconds(200)
        /// How long an empty queue must stay empty before the writer spends a transaction on
        /// upkeep (storages that have some: SQLite's journal fold). Under load the queue
        /// empties for a moment after every batch is answered; folding then doubled the
        /// transactions and split the claims into smaller batches. Claims arriving meanwhile
        /// wait at most this long.
        public var idleGrace: Duration = .milliseconds(1)
        /// How long, under load, the writer lets claims gather before it takes the next batch
        /// (not at all when a full `maxBatch` is already waiting). Under load means the last batch
        /// held more than one claim; a lone claim on a quiet server never waits. Every commit
        /// costs the same whatever its size (thread hand-offs, locks, the WAL write and sync),
        /// and without a wait a busy server committed about 25 claims at a time: at 3 ms,
        /// batches of 200 took about a fifth of the CPU per claim away (bench/claims.sh).
        public var gatherWindow: Duration = .milliseconds(3)
        /// Where the board is checkpointed (a file of this instance's own; SQLite's journal or
        /// PostgreSQL's change feed say what came after it); nil: never. A start then loads the
        /// checkpoint and replays only the claims committed after it.
        public var checkpointPath: String?
        /// How often a changed board is checkpointed (in the background; also at shutdown).
        public var checkpointInterval: Duration = .seconds(300)
        public init() {}
    }

    struct Pending: Sendable {
        var address: IPv4Address
        var name: PlayerName
        var origin: ClaimOrigin
        /// Called once, from the writer, when the claim is stored (or known to change nothing) or failed.
        var complete: @Sendable (Result<Scoreboard.Outcome, any Error>) -> Void
    }

    struct Queue {
        var pending: [Pending] = []
        var writerWaiting: CheckedContinuation<Void, Never>?
        var closed = false
    }

    public let configuration: Configuration
    let storage: any ClaimStorage
    let clock: WallClock
    let logger: Logger
    let board: Mutex<Scoreboard>
    let queue = Mutex(Queue())
    let snapshots: SnapshotStore
    /// The board version the current snapshot was built from.
    let publishedVersion = Atomic<UInt64>(UInt64.max)
    /// Each period's board version the current snapshot was built from (nil: none yet).
    let publishedPeriodVersions = Mutex<[UInt64]?>(nil)
    /// Position in the storage's change feed at start; nil when the storage has a single writer.
    let initialCursor: Int64?
    /// Set by the follow timer; the writer folds other instances' claims between batches, so
    /// its own commits and the feed are applied to the board in commit order.
    let followDue = Atomic<Bool>(false)
    private let followRoundsDone = Atomic<Int>(0)
    /// Change-feed reads completed (shared storage only): observable progress of the follower.
    public var followRounds: Int { followRoundsDone.load(ordering: .acquiring) }

    let claimsCounter = Counter(label: "ipquest_claims_total")
    let unchangedCounter = Counter(label: "ipquest_claims_unchanged_total")
    let batchRecorder = Recorder(label: "ipquest_claim_batch_size")
    let commitTimer = Timer(label: "ipquest_claim_commit_duration")
    let queueFullCounter = Counter(label: "ipquest_claims_rejected_total", dimensions: [("reason", "queue_full")])
    let snapshotTimer = Timer(label: "ipquest_snapshot_build_duration")
    let checkpointTimer = Timer(label: "ipquest_checkpoint_write_duration")
    /// The board's names in order as of the last refresh, extended at the next (names are only added).
    let nameOrder = Mutex(Scoreboard.NameOrder())
    /// What the last refresh kept for the next to move on (`BoardViews.Kept`).
    let kept = Mutex(BoardViews.Kept())
    let checkpointFailures = Counter(label: "ipquest_checkpoint_failures_total")
    /// The storage, when board checkpoints are on.
    let resumable: (any ResumableClaimStorage)?
    /// Board version of the last checkpoint written (nil: none yet since start).
    let checkpointedVersion = Mutex<UInt64?>(nil)
    /// How the board was built at start: "checkpoint" or "storage".
    public let startedFrom: String
    let queueDepth = Gauge(label: "ipquest_claim_queue_depth")

    /// Loads the stored claims and builds the board.
    public init(storage: any ClaimStorage, configuration: Configuration = .init(), clock: WallClock = .system, logger: Logger) async throws {
        self.storage = storage
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        // Cursor first: claims committed while loading come again through the feed (harmless).
        initialCursor = try await storage.changeCursor()
        resumable = configuration.checkpointPath == nil ? nil : storage as? any ResumableClaimStorage
        let started = ContinuousClock.now
        var scoreboard: Scoreboard
        var resumedVersion: UInt64?
        if let resumable, let path = configuration.checkpointPath,
           let resumed = await Self.resume(from: path, storage: resumable, now: clock.seconds, logger: logger) {
            scoreboard = resumed
            resumedVersion = resumed.version
            startedFrom = "checkpoint"
        } else {
            let loading = Mutex(Scoreboard.Loading(now: clock.seconds))
            try await storage.loadAllInTimeOrder { chunk in loading.withLock { $0.add(chunk) } }
            scoreboard = loading.withLock { $0.finish() }
            startedFrom = "storage"
        }
        if let resumable {
            // With a change feed, everything up to the cursor read first is on the board now.
            scoreboard.storagePosition = initialCursor ?? resumable.storagePosition
            // What precedes the board's position may be folded; the next checkpoint is at or after it.
            resumable.allowFold(through: resumedVersion == nil ? scoreboard.storagePosition : scoreboard.checkpointPosition)
        }
        board = Mutex(scoreboard)
        snapshots = SnapshotStore()
        logger.info("loaded claims", metadata: [
            "addresses": "\(scoreboard.addressCount)", "from": "\(startedFrom)",
            "seconds": "\(Double((ContinuousClock.now - started).nanosecondsClamped) / 1e9)",
        ])
        refreshSnapshots()
    }

    /// The board from a checkpoint plus the claims committed after it, or nil (with the reason
    /// logged) when the checkpoint is missing, damaged or stale: then the caller loads storage.
    static func resume(from path: String, storage: any ResumableClaimStorage, now: Int64, logger: Logger) async -> Scoreboard? {
        guard FileManager.default.fileExists(atPath: path) else {
            logger.notice("no board checkpoint yet; loading every stored claim", metadata: ["checkpoint": "\(path)"])
            return nil
        }
        do {
            var (board, generation) = try BoardCheckpoint.read(from: path)
            guard let later = try await storage.claims(after: board.storagePosition, generation: generation) else {
                logger.warning("board checkpoint is stale (storage was compacted past it or bulk-written); loading every stored claim",
                               metadata: ["checkpoint": "\(path)"])
                return nil
            }
            board.checkpointPosition = board.storagePosition
            board.advance(to: now)
            // As the follower does: a claim already on the board (a feed-positioned checkpoint
            // holds this instance's batches after its position) changes nothing.
            for claim in later where board.evaluate(address: claim.address, name: claim.name, at: claim.claimedAt) != .unchanged {
                board.apply(address: claim.address, name: claim.name, at: claim.claimedAt, origin: claim.origin, enforceRefreshInterval: false)
            }
            logger.info("board resumed from checkpoint", metadata: ["checkpoint": "\(path)", "replayed": "\(later.count)"])
            return board
        } catch {
            logger.warning("\(error); loading every stored claim", metadata: ["checkpoint": "\(path)"])
            return nil
        }
    }

    // MARK: Claims

    /// Queues a claim and returns once it is durably stored (or known to change nothing).
    public func claim(address: IPv4Address, name: PlayerName, origin: ClaimOrigin = .unknown) async throws -> Scoreboard.Outcome {
        try await withCheckedThrowingContinuation { continuation in
            submit(address: address, name: name, origin: origin) { continuation.resume(with: $0) }
        }
    }

    /// Queues a claim; `complete` runs once, on the writer's thread, when the claim is durably
    /// stored (or known to change nothing), or at once with `ClaimError` when it is refused.
    /// For callers that are not tasks (an event-loop handler answering from its own thread).
    public func submit(address: IPv4Address, name: PlayerName, origin: ClaimOrigin = .unknown,
                       complete: @escaping @Sendable (Result<Scoreboard.Outcome, any Error>) -> Void) {
        enum Admission { case queued(CheckedContinuation<Void, Never>?), refused(ClaimError) }
        let admission: Admission = queue.withLock { q in
            if q.closed { return .refused(.unavailable("server is shutting down")) }
            if q.pending.count >= configuration.queueCapacity { return .refused(.queueFull) }
            q.pending.append(Pending(address: address, name: name, origin: origin, complete: complete))
            let waiting = q.writerWaiting
            q.writerWaiting = nil
            return .queued(waiting)
        }
        switch admission {
        case .queued(let writer): writer?.resume()
        case .refused(let error):
            if error == .queueFull { queueFullCounter.increment() }
            complete(.failure(error))
        }
    }

    /// Runs the writer and the snapshot refresher until graceful shutdown, then drains the
    /// queue: every claim accepted before shutdown is stored and answered.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await self.writeLoop() }
                group.addTask { await self.snapshotLoop() }
                if self.initialCursor != nil { group.addTask { await self.followTimer() } }
                if self.resumable != nil { group.addTask { await self.checkpointLoop() } }
            }
        } onGracefulShutdown: {
            self.close()
        }
        // Everything accepted is stored and on the board: the next start resumes from here.
        if resumable != nil { await checkpoint() }
    }

    // MARK: Checkpoints

    private func checkpointLoop() async {
        // A start that loaded every stored claim checkpoints at once, so the next one need not.
        if startedFrom != "checkpoint" { await checkpoint() }
        while !Task.isCancelled, !isClosed {
            // In short steps: a graceful shutdown must not wait out a whole interval (the
            // final checkpoint is written by `run` once the writer has drained the queue).
            let due = ContinuousClock.now + configuration.checkpointInterval
            while ContinuousClock.now < due, !isClosed, !Task.isCancelled {
                try? await Task.sleep(for: min(.milliseconds(250), due - ContinuousClock.now))
            }
            if isClosed { return }
            await checkpoint()
        }
    }

    /// Writes the board as it is now (a copy: claims go on meanwhile) when it changed since
    /// the last checkpoint; then lets the storage compact what precedes it. Public for tests.
    public func checkpoint() async {
        guard let resumable, let path = configuration.checkpointPath else { return }
        if checkpointedVersion.withLock({ $0 }) == board.withLock({ $0.version }) { return }
        let started = ContinuousClock.now
        do {
            // The generation before the copy: a table rewritten in between makes the file stale.
            let generation = try await resumable.generation()
            let copy = board.withLock { $0 }
            try await Self.onBlockingThread { try BoardCheckpoint.write(copy, generation: generation, to: path) }
            checkpointedVersion.withLock { $0 = copy.version }
            resumable.allowFold(through: copy.storagePosition)
            checkpointTimer.recordNanoseconds((ContinuousClock.now - started).nanosecondsClamped)
            logger.info("board checkpoint written", metadata: [
                "checkpoint": "\(path)", "position": "\(copy.storagePosition)", "addresses": "\(copy.addressCount)",
                "seconds": "\(Double((ContinuousClock.now - started).nanosecondsClamped) / 1e9)",
            ])
        } catch {
            checkpointFailures.increment()
            logger.error("board checkpoint failed; the journal keeps everything since the last one", metadata: ["error": "\(error)"])
        }
    }

    /// File writes of hundreds of MB stay off the cooperative thread pool.
    static func onBlockingThread(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global(qos: .utility).async { c.resume(with: Result { try body() }) }
        }
    }

    /// Stops taking claims; the writer finishes what is queued and returns.
    public func close() {
        let waiting = queue.withLock { q -> CheckedContinuation<Void, Never>? in
            q.closed = true
            let w = q.writerWaiting
            q.writerWaiting = nil
            return w
        }
        waiting?.resume()
    }

    private func nextBatch() async -> [Pending]? {
        var graceTaken = false
        while true {
            enum Step { case batch([Pending]), finished, wait }
            let step: Step = queue.withLock { q in
                if !q.pending.isEmpty {
                    queueDepth.record(q.pending.count)
                    let n = min(q.pending.count, configuration.maxBatch)
                    let batch = Array(q.pending.prefix(n))
                    q.pending.removeFirst(n)
                    return .batch(batch)
                }
                if q.closed { return .finished }
                return followDue.load(ordering: .acquiring) ? .batch([]) : .wait
            }
            switch step {
            case .batch(let b): return b
            case .finished: return nil
            case .wait:
                // Empty for a moment (the claims just answered may be coming back): look again
                // shortly. Still empty: idle, so fold some journal, otherwise sleep until a claim comes.
                if !graceTaken, storage.hasUpkeep {
                    graceTaken = true
                    try? await Task.sleep(for: configuration.idleGrace)
                    continue
                }
                if await foldJournal() { continue }
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let resumeNow = queue.withLock { q -> Bool in
                        if !q.pending.isEmpty || q.closed || followDue.load(ordering: .acquiring) { return true }
                        q.writerWaiting = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            }
        }
    }

    /// One maintenance step (folding at least `maintenanceChunk` journal rows, more when
    /// `atLeast` says so). Returns true if it did some work.
    private func foldJournal(atLeast: Int = 0) async -> Bool {
        do {
            return try await storage.maintain(budget: max(configuration.maintenanceChunk, atLeast)) > 0
        } catch {
            logger.error("storage maintenance failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Batches are stored one after another (a later claim must commit after an earlier one),
    /// but the work around a storage call overlaps the next one: as soon as batch N is
    /// committed, batch N+1 is decided (against the board plus N's claims) and its storage call
    /// starts; only then does N go onto the board and get its answers.
    private func writeLoop() async throws {
        var batchesSinceMaintenance = 0
        var storedSinceMaintenance = 0
        var follower = initialCursor.map { Follower(cursor: $0) }
        var owed: Committed?
        var lastBatchSize = 0
        func settleOwed() {
            if let committed = owed.take() { settle(committed) }
        }
        while true {
            // Never wait (for claims, the feed or maintenance) while answers are owed.
            if lastBatchSize > 1, configuration.gatherWindow > .zero {
                settleOwed()
                await gather()
            } else if owed != nil, queue.withLock({ $0.pending.isEmpty }) || followDue.load(ordering: .acquiring) {
                settleOwed()
            }
            guard let batch = await nextBatch() else { break }
            lastBatchSize = batch.count
            if followDue.exchange(false, ordering: .acquiringAndReleasing), follower != nil {
                settleOwed()
                await follow(&follower!)
            }
            if batch.isEmpty { continue }
            let decided = decide(batch, unapplied: owed?.decided.effective ?? [])
            async let stored = store(decided)
            settleOwed()
            owed = await stored
            batchesSinceMaintenance += 1
            storedSinceMaintenance += decided.effective.count
            // Under constant load the queue is never empty for long; fold the journal every few
            // batches, at least as many rows as came in since the last fold, so it stays short.
            if batchesSinceMaintenance >= 32 {
                batchesSinceMaintenance = 0
                settleOwed()
                _ = await foldJournal(atLeast: storedSinceMaintenance)
                storedSinceMaintenance = 0
            }
        }
        settleOwed()
    }

    /// Waits `gatherWindow` unless a full batch is already queued or the engine is closing.
    /// (One sleep: looking at the queue more often cost timer wake-ups and never ended a wait
    /// early at the rates measured, where a full batch takes far longer than the window.)
    private func gather() async {
        let ready = queue.withLock { $0.pending.count >= configuration.maxBatch || $0.closed }
        if !ready { try? await Task.sleep(for: configuration.gatherWindow) }
    }

    // MARK: Other instances' claims

    struct Follower {
        var cursor: Int64
        var failures = 0
        var retryAt: ContinuousClock.Instant?
    }

    /// Wakes the writer every `followInterval` to read the change feed.
    private func followTimer() async {
        while !Task.isCancelled, !isClosed {
            try? await Task.sleep(for: configuration.followInterval)
            followDue.store(true, ordering: .releasing)
            let waiting = queue.withLock { q -> CheckedContinuation<Void, Never>? in
                let w = q.writerWaiting
                q.writerWaiting = nil
                return w
            }
            waiting?.resume()
        }
    }

    /// Folds claims committed since the cursor into the board. Claims this instance already
    /// applied come back too and change nothing. Failures back off (up to 5 s).
    func follow(_ follower: inout Follower) async {
        if let retryAt = follower.retryAt, ContinuousClock.now < retryAt { return }
        let limit = 50_000
        do {
            while true {
                let changes = try await storage.changes(since: follower.cursor, limit: limit)
                follower.cursor = changes.cursor
                let now = clock.seconds
                _ = board.withLock { board -> Int in
                    board.advance(to: now)
                    // The feed is read between batches, with none of this instance's committed
                    // and not yet applied: everything up to the cursor is on the board now (the
                    // position a checkpoint of it resumes from).
                    board.storagePosition = changes.cursor
                    var n = 0
                    for claim in changes.claims where board.evaluate(address: claim.address, name: claim.name, at: claim.claimedAt) != .unchanged {
                        board.apply(address: claim.address, name: claim.name, at: claim.claimedAt, origin: claim.origin, enforceRefreshInterval: false)
                        n += 1
                    }
                    return n
                }
                if changes.claims.count < limit { break }
            }
            follower.failures = 0
            followRoundsDone.add(1, ordering: .releasing)
            follower.retryAt = nil
        } catch {
            follower.failures += 1
            follower.retryAt = ContinuousClock.now + .milliseconds(min(100 << min(follower.failures, 6), 5_000))
            if follower.failures == 1 { logger.warning("cannot read other instances' claims", metadata: ["error": "\(error)"]) }
        }
    }

    /// A batch with each claim's effect decided.
    struct Decided: Sendable {
        var batch: [Pending]
        var effective: [Claim]
        var outcomes: [Scoreboard.Outcome]
    }

    /// A stored batch, not yet on the board nor answered.
    struct Committed: Sendable {
        var decided: Decided
        /// The storage position of its last claim (resumable storages).
        var position: Int64?
    }

    /// Decides each claim's effect in order, as if the earlier ones in the batch, and
    /// `unapplied` (a committed batch not yet on the board), were applied.
    func decide(_ batch: [Pending], unapplied: [Claim]) -> Decided {
        let now = clock.seconds
        var effective: [Claim] = []
        var outcomes: [Scoreboard.Outcome] = []
        effective.reserveCapacity(batch.count)
        outcomes.reserveCapacity(batch.count)
        board.withLock { board in
            board.advance(to: now)
            var overlay: [UInt32: (PlayerName, Int64)] = [:]
            for claim in unapplied { overlay[claim.address.value] = (claim.name, claim.claimedAt) }
            for p in batch {
                let outcome: Scoreboard.Outcome
                if let (owner, at) = overlay[p.address.value] {
                    outcome = owner == p.name && now - at < Scoreboard.refreshInterval ? .unchanged : .claimed(previousOwner: owner)
                } else {
                    outcome = board.evaluate(address: p.address, name: p.name, at: now)
                }
                if case .claimed = outcome {
                    overlay[p.address.value] = (p.name, now)
                    effective.append(Claim(address: p.address, name: p.name, claimedAt: now, origin: p.origin))
                }
                outcomes.append(outcome)
            }
        }
        return Decided(batch: batch, effective: effective, outcomes: outcomes)
    }

    /// Commits the batch's effective claims; on failure answers every claim of it with 503.
    func store(_ decided: Decided) async -> Committed? {
        do {
            let started = ContinuousClock.now
            var position: Int64?
            if let resumable {
                position = try await resumable.appendReturningPosition(decided.effective)
            } else {
                try await storage.append(decided.effective)
            }
            commitTimer.recordNanoseconds((ContinuousClock.now - started).nanosecondsClamped)
            return Committed(decided: decided, position: position)
        } catch {
            logger.error("claim batch not stored", metadata: ["error": "\(error)", "claims": "\(decided.batch.count)"])
            for p in decided.batch { p.complete(.failure(ClaimError.unavailable("storage error"))) }
            return nil
        }
    }

    /// Puts a committed batch on the board, then answers its claims.
    func settle(_ committed: Committed) {
        let decided = committed.decided
        board.withLock { board in
            for claim in decided.effective {
                board.apply(address: claim.address, name: claim.name, at: claim.claimedAt, origin: claim.origin, enforceRefreshInterval: false)
            }
            if let position = committed.position { board.storagePosition = position }
        }
        batchRecorder.record(decided.batch.count)
        claimsCounter.increment(by: decided.effective.count)
        unchangedCounter.increment(by: decided.batch.count - decided.effective.count)
        for (p, outcome) in zip(decided.batch, decided.outcomes) { p.complete(.success(outcome)) }
    }

    // MARK: Reads

    private func snapshotLoop() async {
        var pause = configuration.snapshotInterval
        while !Task.isCancelled, !isClosed {
            try? await Task.sleep(for: pause)
            // Moving the windows forward is cheap; re-encoding is not, so only when a count moved.
            let version = board.withLock { board -> UInt64 in
                board.advance(to: clock.seconds)
                return board.version
            }
            if version != publishedVersion.load(ordering: .acquiring) {
                let started = ContinuousClock.now
                refreshSnapshots()
                pause = Self.snapshotPause(after: ContinuousClock.now - started, interval: configuration.snapshotInterval)
            }
        }
    }

    /// The wait before the next refresh: the configured interval, or four times what the last
    /// refresh took when that is longer — so re-encoding a large board takes at most a fifth of
    /// a core while claims stream in — but never so long that scores are more than a second
    /// old: a refresh of over 200 ms (478 ms at 50 M addresses, bench/scale.sh) then takes
    /// about half a core.
    static func snapshotPause(after took: Duration, interval: Duration) -> Duration {
        // A refresh of over half a second cannot keep scores a second fresh: then at least rest
        // as long as it took (half a core at most).
        max(interval, min(took * 4, max(.seconds(1) - took, took)))
    }

    private var isClosed: Bool { queue.withLock { $0.closed } }

    /// Rebuilds the encoded read models from the board (called by the refresher; tests call it
    /// to avoid waiting).
    public func refreshSnapshots() {
        let started = ContinuousClock.now
        defer { snapshotTimer.recordNanoseconds((ContinuousClock.now - started).nanosecondsClamped) }
        // One refresh at a time, so the period versions published match the bodies published.
        publishedPeriodVersions.withLock { published in
            let (sec, nsec) = clock.now()
            // Under the lock only what is cheap: the recent claims and a copy of the counts (the
            // per-address state left out, so claims meanwhile copy nothing large on write). The
            // views are computed from that copy after the lock is released: computed under it,
            // they held the claim writer up (p99 of claims 84 ms vs 22 ms on an empty board at
            // 10 M addresses, bench/scale.sh).
            let (counts, recent, moved, changes, version, periodVersions) = board.withLock { board in
                board.advance(to: sec)
                // Only periods whose counts moved are copied and re-encoded: an idle board
                // whose claims age out of the hour window no longer re-encodes the all-time views.
                let moved = Period.allCases.filter { published == nil || published![$0.index] != board.periodVersions[$0.index] }
                return (board.countsOnly(), board.recent(limit: 50), moved, board.takeChanges(), board.version, board.periodVersions)
            }
            let order = nameOrder(of: counts)
            let views = kept.withLock { BoardViews(counts, recent: recent, order: order, periods: moved, changes: changes, kept: &$0) }
            publishedVersion.store(version, ordering: .releasing)
            snapshots.publish(views.encode(now: (sec, nsec)), leaderboards: views.leaderboardSources, now: sec)
            published = periodVersions
        }
    }

    public var snapshot: Snapshot { snapshots.current }

    /// One page of a leaderboard: from the published top when the page lies inside it (or
    /// past every player), else from the whole ranking, computed for the board as it is now
    /// and kept until the board changes (only for readers who page that deep).
    public func leaderboardPage(_ period: Period, residential: Bool, offset: Int, limit: Int) -> String? {
        let key = Snapshot.leaderboardKey(period, residential: residential)
        guard let top = snapshot.leaderboards[key] else { return nil }
        let now = clock.seconds
        if top.isWhole || offset + limit <= top.entryCount || offset >= top.count {
            return Snapshot.leaderboardPage(top, period: period, residential: residential, offset: offset, limit: limit, now: now)
        }
        return Snapshot.leaderboardPage(wholeRanking(period, residential: residential, key: key), period: period, residential: residential,
                                        offset: offset, limit: limit, now: now)
    }

    /// The names of `counts` (a copy of the board) in order: the order kept from the last
    /// call, extended by the names interned since, and kept for the next.
    private func nameOrder(of counts: Scoreboard) -> Scoreboard.NameOrder {
        nameOrder.withLock { kept in
            kept = counts.nameOrder(extending: kept)
            return kept
        }
    }

    /// The last whole ranking made for a deep page, with its key and the board version.
    private let deepRanking = Mutex<(key: String, version: UInt64, ranking: Scoreboard.Ranking)?>(nil)

    private func wholeRanking(_ period: Period, residential: Bool, key: String) -> Scoreboard.Ranking {
        let cached = deepRanking.withLock { $0 }
        let (counts, version) = board.withLock { board -> (Scoreboard?, UInt64) in
            board.advance(to: clock.seconds)
            // The counts are copied only when the kept ranking is not this board's.
            if let cached, cached.key == key, cached.version == board.version { return (nil, board.version) }
            return (board.countsOnly(), board.version)
        }
        guard let counts else { return cached!.ranking }
        let order = nameOrder(of: counts)
        let standings = counts.blocks(period, residential: residential, order: order)
        let ranking = counts.ranking(period, residential: residential, standings: standings, order: order)
        deepRanking.withLock { $0 = (key, version, ranking) }
        return ranking
    }

    /// Claims waiting for the writer.
    public var queuedClaims: Int { queue.withLock { $0.pending.count } }

    /// A player's standing, computed from the live board.
    public func player(_ name: PlayerName, period: Period) -> Scoreboard.PlayerStanding? {
        board.withLock { board in
            board.advance(to: clock.seconds)
            return board.player(name, period: period)
        }
    }

    /// Direct read of the board (tests, export).
    public func withBoard<T>(_ body: (Scoreboard) throws -> T) rethrows -> T {
        try board.withLock { try body($0) }
    }
}

extension Duration {
    var nanosecondsClamped: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
