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
import CSystemInfo
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
        var usage = ipq_process_usage()
        ipq_process_usage_now(&usage)
        func seconds(_ microseconds: Int64) -> String {
            let fraction = String((microseconds % 1_000_000) / 1_000)
            return "\(microseconds / 1_000_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
        }
        var lines: [(String, String)] = [
            ("uptime", "\(max(0, now - startedAt))"),
            ("started_from", engine.startedFrom),
            ("addresses", "\(addresses)"),
            ("players", "\(players)"),
            ("storage_position", "\(position)"),
            ("claims_queued", "\(engine.queuedClaims)"),
            ("board_version", "\(version)"),
            ("maxrss_kib", "\(usage.max_resident_kib)"),
            ("utime", seconds(usage.user_microseconds)),
            ("stime", seconds(usage.system_microseconds)),
        ]
        if let client {
            lines.append(("yourip", "\(client)"))
            lines.append(("yourtokens", "\(claimLimiter.tokens(NetworkKey(client)))"))
        }
        return lines.map { "\($0.0): \($0.1)\n" }.joined()
    }
}
