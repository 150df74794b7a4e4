#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Edge
import IPAddress
import Synchronization
import CDispatch // the C structs' members (stat, timespec) as MemberImportVisibility finds them
import GameRules

/// `/statusz`: the process's and the game's figures as `name: value` lines, as ipv4.games
/// shows them (its bots read `yourtokens` to pace themselves).
enum Statusz {
    /// When the process started serving (set by `markStart`, else on first use).
    private static let started = Mutex<Int64?>(nil)

    static func markStart() {
        started.withLock { if $0 == nil { $0 = Int64(time(nil)) } }
    }

    static var startedAt: Int64 {
        started.withLock { value in
            if value == nil { value = Int64(time(nil)) }
            return value!
        }
    }

    static func text(engine: GameEngine, client: IPAddress?, claimLimiter: TokenBucketLimiter<NetworkKey>) -> String {
        let now = engine.clock.seconds
        let (addresses, players, position, version) = engine.withBoard { ($0.addressCount, $0.playerCount, $0.storagePosition, $0.version) }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ t: timeval) -> String {
            let micros = Int(t.tv_usec)
            let fraction = String(micros / 1_000)
            return "\(t.tv_sec).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
        }
        var lines: [(String, String)] = [
            ("uptime", "\(max(0, now - startedAt))"),
            ("started_from", engine.startedFrom),
            ("addresses", "\(addresses)"),
            ("players", "\(players)"),
            ("storage_position", "\(position)"),
            ("claims_queued", "\(engine.queuedClaims)"),
            ("board_version", "\(version)"),
            ("maxrss_kib", "\(usage.ru_maxrss)"),
            ("utime", seconds(usage.ru_utime)),
            ("stime", seconds(usage.ru_stime)),
        ]
        if let client {
            lines.append(("yourip", "\(client)"))
            lines.append(("yourtokens", "\(claimLimiter.tokens(NetworkKey(client)))"))
        }
        return lines.map { "\($0.0): \($0.1)\n" }.joined()
    }
}
