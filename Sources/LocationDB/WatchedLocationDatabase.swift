#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A database file that is reopened when it changes on disk, for long-running servers.
///
/// `current` is the database in use; `reloadIfChanged()` compares the file's identity (device,
/// inode, size, modification time) with the one that was opened and, when it differs, opens
/// and validates the new file before swapping it in. A file that fails to open keeps the old
/// database in service. Readers holding the old `LocationDatabase` keep a valid mapping until
/// they drop it.
///
/// Replace the file atomically (write a new file, then `rename(2)` it over the old one), as
/// `ipquest location update` and Debian's package manager do: the database is memory-mapped,
/// and truncating a mapped file in place is undefined for any reader of it (libloc's too).
public final class WatchedLocationDatabase: Sendable {
    public let path: String

    struct FileIdentity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, modifiedSeconds: Int, modifiedNanoseconds: Int
    }

    private struct State {
        var database: LocationDatabase?
        var identity: FileIdentity?
        var lastError: LocationDatabaseError?
    }

    private let state: Mutex<State>

    public enum ReloadResult: Equatable, Sendable {
        case unchanged
        case reloaded
        /// The file changed (or vanished) and could not be opened; the previous database stays.
        case failed(LocationDatabaseError)
    }

    /// Opens the file now. Throws when it cannot be opened, so a misconfigured path is found
    /// at start rather than at the first lookup.
    public init(path: String) throws(LocationDatabaseError) {
        self.path = path
        let identity = Self.identity(of: path)
        let database = try LocationDatabase(path: path)
        state = Mutex(State(database: database, identity: identity))
    }

    /// The database in use.
    public var current: LocationDatabase? { state.withLock { $0.database } }

    /// The most recent reload failure, cleared by a successful reload.
    public var lastError: LocationDatabaseError? { state.withLock { $0.lastError } }

    /// Reopens the file if its identity changed since it was last opened.
    @discardableResult
    public func reloadIfChanged() -> ReloadResult {
        let identity = Self.identity(of: path)
        let known = state.withLock { $0.identity }
        guard identity != known else { return .unchanged }
        do {
            let database = try LocationDatabase(path: path)
            state.withLock { $0 = State(database: database, identity: identity, lastError: nil) }
            return .reloaded
        } catch {
            // Remember the identity so a broken file is reported once, not on every check.
            state.withLock {
                $0.identity = identity
                $0.lastError = error
            }
            return .failed(error)
        }
    }

    /// Checks the file every `interval` until the task is cancelled, reporting each reload
    /// or failure to `onChange`.
    public func watch(every interval: Duration, onChange: @Sendable (ReloadResult) -> Void = { _ in }) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let result = reloadIfChanged()
            if result != .unchanged { onChange(result) }
        }
    }

    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modifiedSeconds: Int(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec))
    }
}
